import NIOCore
import PathManager
import RSerPoolWire
import Testing

/// The netlink messages byte for byte, from linux/netlink.h, genetlink.h and mptcp.h (the
/// numbers are the uapi's; netlink is host order, so the vectors are for little-endian hosts).
@Suite struct MPTCPNetlinkCodecTests {
    static let family: UInt16 = 0x1C

    @Test(.enabled(if: 1.littleEndian == 1, "the vectors are written for a little-endian host"))
    func addEndpointMatchesTheKernelLayout() {
        let endpoint = MPTCPPathManager.Endpoint(id: 2, address: IPAddress("10.0.0.1")!, flags: .subflow)
        let bytes = MPTCPPathManager.addEndpoint(endpoint, family: Self.family, sequence: 7).bytes
        let expected: [UInt8] = [
            0x38, 0, 0, 0, 0x1C, 0, 0x05, 0, 7, 0, 0, 0, 0, 0, 0, 0,   // nlmsghdr: 56 bytes, family, REQUEST|ACK, seq 7
            0x01, 0x01, 0, 0,                                           // genlmsghdr: ADD_ADDR, version 1
            0x24, 0, 0x01, 0x80,                                        // MPTCP_PM_ATTR_ADDR | NLA_F_NESTED, 36 bytes
            0x06, 0, 0x01, 0, 0x02, 0, 0, 0,                            //   FAMILY AF_INET (+2 padding)
            0x05, 0, 0x02, 0, 0x02, 0, 0, 0,                            //   ID 2 (+3 padding)
            0x08, 0, 0x03, 0, 10, 0, 0, 1,                              //   ADDR4 10.0.0.1, network order
            0x08, 0, 0x06, 0, 0x02, 0, 0, 0,                            //   FLAGS subflow
        ]
        #expect(bytes == expected)
    }

    @Test(.enabled(if: 1.littleEndian == 1, "the vectors are written for a little-endian host"))
    func deleteSetBackupAndFamilyRequests() {
        #expect(MPTCPPathManager.deleteEndpoint(id: 3, family: Self.family, sequence: 1).bytes == [
            0x20, 0, 0, 0, 0x1C, 0, 0x05, 0, 1, 0, 0, 0, 0, 0, 0, 0,
            0x02, 0x01, 0, 0,
            0x0C, 0, 0x01, 0x80, 0x05, 0, 0x02, 0, 0x03, 0, 0, 0,
        ])
        #expect(MPTCPPathManager.setBackup(id: 3, true, family: Self.family, sequence: 2).bytes == [
            0x28, 0, 0, 0, 0x1C, 0, 0x05, 0, 2, 0, 0, 0, 0, 0, 0, 0,  // 16 + 4 + 20 bytes
            0x07, 0x01, 0, 0,                                          // SET_FLAGS
            0x14, 0, 0x01, 0x80,                                       // ADDR, nested, 20 bytes
            0x05, 0, 0x02, 0, 0x03, 0, 0, 0,                           //   ID 3
            0x08, 0, 0x06, 0, 0x04, 0, 0, 0,                           //   FLAGS backup
        ])
        // "mptcp_pm" and its NUL: a 13-byte attribute padded to 16.
        let family = GenericNetlink.familyRequest(name: "mptcp_pm", sequence: 9).bytes
        #expect(family == [0x24, 0, 0, 0, 0x10, 0, 0x01, 0, 9, 0, 0, 0, 0, 0, 0, 0,
                           0x03, 0x01, 0, 0,
                           0x0D, 0, 0x02, 0, 0x6D, 0x70, 0x74, 0x63, 0x70, 0x5F, 0x70, 0x6D, 0, 0, 0, 0])
    }

    @Test func subflowCommandsCarryTokenBothAddressesAndHostOrderPorts() throws {
        let message = MPTCPPathManager.destroySubflow(token: 0xDEAD_BEEF, local: IPAddress("10.0.1.2")!, localPort: 8080,
                                                      remote: IPAddress("2001:db8::1")!, remotePort: 443, family: Self.family, sequence: 3)
        let (command, attributes) = try GenericNetlink.parse(message)
        #expect(command == MPTCPPathManager.Command.subflowDestroy.rawValue)
        #expect(attributes.first(4)?.u32 == 0xDEAD_BEEF)
        let local = try NetlinkAttribute.parse(try #require(attributes.first(1)).value)
        #expect(local.first(5)?.u16 == 8080, "host order in commands")
        let remote = try NetlinkAttribute.parse(try #require(attributes.first(6)).value)
        #expect(remote.first(1)?.u16 == 10 && remote.first(4)?.value.readableBytes == 16 && remote.first(5)?.u16 == 443)
    }

    @Test func settingASubflowsBackupFlagNamesItsConnectionAndBothEnds() throws {
        let message = MPTCPPathManager.setSubflowBackup(token: 0xDEAD_BEEF, local: IPAddress("10.0.1.2")!, localPort: 40777,
                                                        remote: IPAddress("10.0.2.1")!, remotePort: 5201, true, family: Self.family, sequence: 4)
        let (command, attributes) = try GenericNetlink.parse(message)
        #expect(command == MPTCPPathManager.Command.setFlags.rawValue)
        #expect(attributes.first(4)?.u32 == 0xDEAD_BEEF)
        let local = try NetlinkAttribute.parse(try #require(attributes.first(1)).value)
        #expect(local.first(1)?.u16 == 2 && local.first(3).map { Array(buffer: $0.value) } == [10, 0, 1, 2] && local.first(5)?.u16 == 40777)
        #expect(local.first(6)?.u32 == MPTCPPathManager.EndpointFlags.backup.rawValue)
        let remote = try NetlinkAttribute.parse(try #require(attributes.first(6)).value)
        #expect(remote.first(3).map { Array(buffer: $0.value) } == [10, 0, 2, 1] && remote.first(5)?.u16 == 5201)
        let cleared = MPTCPPathManager.setSubflowBackup(token: 1, local: IPAddress("10.0.1.2")!, localPort: 1, remote: IPAddress("10.0.2.1")!,
                                                        remotePort: 2, false, family: Self.family, sequence: 5)
        let clearedLocal = try NetlinkAttribute.parse(try #require(try GenericNetlink.parse(cleared).1.first(1)).value)
        #expect(clearedLocal.first(6)?.u32 == 0, "the flags attribute is sent as 0: the kernel clears the bit")
    }

    @Test func removingAnAddressNamesTheConnectionAndTheLocalID() throws {
        let (command, attributes) = try GenericNetlink.parse(MPTCPPathManager.removeAddress(token: 0xDEAD_BEEF, localID: 0, family: Self.family, sequence: 6))
        #expect(command == MPTCPPathManager.Command.remove.rawValue)
        #expect(attributes.first(4)?.u32 == 0xDEAD_BEEF && attributes.first(5)?.u8 == 0, "MPTCP_PM_ATTR_TOKEN, MPTCP_PM_ATTR_LOC_ID")
    }

    @Test func eventsDecodeWithNetworkOrderPortsAndSkipUnknownAttributes() throws {
        var payload = ByteBuffer(bytes: [11, 1, 0, 0])   // SUB_CLOSED
        for attribute: NetlinkAttribute in [
            .u32(1, 0xDEAD_BEEF), .u16(2, 2), .u8(3, 1), .u8(4, 0), .bytes(5, [10, 0, 1, 2]), .bytes(7, [10, 0, 2, 1]),
            .bytes(9, [0x1F, 0x90]), .bytes(10, [0x00, 0x50]), .u8(11, 0), .u8(12, 110), .u32(99, 7),
        ] { attribute.write(to: &payload) }
        let event = try MPTCPEvent(NetlinkMessage(type: Self.family, flags: [], sequence: 0, payload: payload))
        #expect(event.kind == .subflowClosed && event.token == 0xDEAD_BEEF && event.localID == 1 && event.remoteID == 0)
        #expect(event.source == IPAddress("10.0.1.2") && event.destination == IPAddress("10.0.2.1"))
        #expect(event.sourcePort == 8080 && event.destinationPort == 80, "network order in events")
        #expect(event.error == 110 && event.backup == false)
    }

    @Test func theControllersAnswerGivesTheFamilyAndItsGroups() throws {
        var payload = ByteBuffer(bytes: [1, 2, 0, 0])   // CTRL_CMD_NEWFAMILY
        NetlinkAttribute.u16(1, Self.family).write(to: &payload)
        NetlinkAttribute.string(2, "mptcp_pm").write(to: &payload)
        NetlinkAttribute.nested(7, [
            .nested(1, [.string(1, "mptcp_pm_cmds"), .u32(2, 5)]),
            .nested(2, [.string(1, "mptcp_pm_events"), .u32(2, 6)]),
        ]).write(to: &payload)
        let datagram = ByteBuffer(bytes: NetlinkMessage(type: GenericNetlink.controllerID, flags: [], sequence: 9, payload: payload).bytes)
        let messages = try NetlinkMessage.parse(datagram)
        #expect(messages.count == 1 && messages[0].sequence == 9)
        let family = try GenericNetlink.family(from: messages[0])
        #expect(family.identifier == Self.family && family.multicastGroups == ["mptcp_pm_cmds": 5, "mptcp_pm_events": 6])
    }

    @Test func kernelErrorsAndAcknowledgementsAreRecognised() throws {
        func errorMessage(_ code: Int32) -> NetlinkMessage {
            var payload = ByteBuffer()
            payload.writeInteger(code, endianness: .host)
            payload.writeRepeatingByte(0, count: 16)   // the request's header
            return NetlinkMessage(type: NetlinkMessage.errorType, flags: [], sequence: 4, payload: payload)
        }
        #expect(errorMessage(0).errorCode == 0)
        #expect(errorMessage(0).errorNumber == nil, "an acknowledgement is no error")
        #expect(throws: NetlinkError("the kernel answered errno 17", errno: 17)) { try GenericNetlink.parse(errorMessage(-17)) }
        // Found by the fuzzer at full speed: Int32.min cannot be negated (it trapped).
        #expect(errorMessage(.min).errorNumber == .max)
        #expect(throws: NetlinkError.self) { try GenericNetlink.parse(errorMessage(.min)) }
    }

    @Test(arguments: [
        [UInt8]([0x10, 0, 0]),                                              // shorter than a header
        [0x40, 0, 0, 0, 0x1C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],             // length past the datagram
        [0x08, 0, 0, 0, 0x1C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],             // length under a header
    ])
    func malformedDatagramsAreRefused(bytes: [UInt8]) {
        #expect(throws: NetlinkError.self) { try NetlinkMessage.parse(ByteBuffer(bytes: bytes)) }
    }

    @Test func malformedAttributesAreRefused() {
        #expect(throws: NetlinkError.self) { try NetlinkAttribute.parse(ByteBuffer(bytes: [0x09, 0, 1, 0, 1, 2, 3, 4])) }   // past the end
        #expect(throws: NetlinkError.self) { try NetlinkAttribute.parse(ByteBuffer(bytes: [0x02, 0, 1, 0])) }               // under a header
        #expect(throws: NetlinkError.self) { try NetlinkAttribute.parse(ByteBuffer(bytes: [0x04, 0, 1, 0, 0xFF])) }         // trailing byte
    }

    @Test func endpointsRoundTripThroughADumpAnswer() throws {
        let endpoint = MPTCPPathManager.Endpoint(id: 5, address: IPAddress("2001:db8::7")!, port: 5999, flags: [.signal, .backup], interfaceIndex: 4)
        var request = MPTCPPathManager.addEndpoint(endpoint, family: Self.family, sequence: 1)
        // The kernel answers a dump with NEW_ADDR-shaped messages carrying the same nested address.
        request.payload.setInteger(UInt8(3), at: request.payload.readerIndex)
        #expect(try MPTCPPathManager.endpoints(in: request) == [endpoint])
    }
}

@Suite struct RouteNetlinkTests {
    @Test func aConfiguredRouteIsKeptWholeAndHandedBackAsItWas() throws {
        // rtmsg: AF_INET, /24, table 102 (also as RTA_TABLE), RTPROT_BOOT, scope link, unicast.
        var payload = ByteBuffer(bytes: [2, 24, 0, 0, 102, 3, 253, 1, 0, 0, 0, 0])
        for attribute: NetlinkAttribute in [.u32(15, 102), .bytes(1, [10, 78, 1, 0]), .u32(4, 7)] { attribute.write(to: &payload) }
        let message = NetlinkMessage(type: RouteNetlink.newRoute, flags: [.multi], sequence: 3, payload: payload)
        let route = try #require(try RouteNetlink.route(from: message))
        #expect(route.family == 2 && route.table == 102 && route.outputInterface == 7 && route.isConfigured)
        let again = RouteNetlink.addRoute(route, sequence: 9)
        #expect(again.type == 24 && again.flags == [.request, .acknowledge, .create, .replace] && again.payload == payload)
        // The kernel's own prefix route and the local table are left to the kernel.
        var kernel = payload
        kernel.setInteger(UInt8(2), at: kernel.readerIndex + 5)
        #expect(try RouteNetlink.route(from: NetlinkMessage(type: 24, flags: [], sequence: 0, payload: kernel))?.isConfigured == false)
        #expect(throws: NetlinkError.self) { try RouteNetlink.route(from: NetlinkMessage(type: 24, flags: [], sequence: 0, payload: ByteBuffer(bytes: [2, 24]))) }
    }

    /// ifaddrmsg + attributes as `ip monitor address` would receive them (linux/if_addr.h).
    @Test func addressMessagesNameTheInterfaceAddressAndWhetherItIsUsable() throws {
        func message(_ type: UInt16, family: UInt8, scope: UInt8, index: Int32, _ attributes: [NetlinkAttribute]) -> NetlinkMessage {
            var payload = ByteBuffer(bytes: [family, family == 2 ? 24 : 64, 0, scope])
            payload.writeInteger(index, endianness: .host)
            for attribute in attributes { attribute.write(to: &payload) }
            return NetlinkMessage(type: type, flags: [], sequence: 0, payload: payload)
        }
        // IPv4 on a point-to-point link: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
        let v4 = try #require(try RouteNetlink.address(from: message(20, family: 2, scope: 0, index: 7, [.bytes(1, [10, 78, 2, 2]), .bytes(2, [10, 78, 2, 7]), .u32(8, 0x80)])))
        #expect(v4 == RouteNetlink.InterfaceAddress(interfaceIndex: 7, address: IPAddress("10.78.2.7")!, prefixLength: 24, scope: 0, flags: 0x80, deleted: false))
        #expect(v4.isUsable)
        let gone = try #require(try RouteNetlink.address(from: message(21, family: 2, scope: 0, index: 7, [.bytes(2, [10, 78, 2, 1])])))
        #expect(gone.deleted && !gone.isUsable && gone.address == IPAddress("10.78.2.1")!)
        // IPv6: IFA_ADDRESS only; tentative (duplicate address detection running) is not usable yet.
        let v6Bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [9]
        let tentative = try #require(try RouteNetlink.address(from: message(20, family: 10, scope: 0, index: 3, [.bytes(1, v6Bytes), .u32(8, 0x40)])))
        #expect(tentative.address == IPAddress("2001:db8::9")! && !tentative.isUsable)
        let linkLocal = try #require(try RouteNetlink.address(from: message(20, family: 10, scope: 253, index: 3, [.bytes(1, v6Bytes)])))
        #expect(!linkLocal.isUsable, "link scope")
        #expect(try RouteNetlink.address(from: message(20, family: 17, scope: 0, index: 3, [])) == nil, "not IP")
        #expect(try RouteNetlink.address(from: message(16, family: 2, scope: 0, index: 3, [])) == nil, "a link message")
        #expect(throws: NetlinkError.self) { try RouteNetlink.address(from: message(20, family: 2, scope: 0, index: 7, [.bytes(2, [10, 78])])) }
        #expect(throws: NetlinkError.self) { try RouteNetlink.address(from: NetlinkMessage(type: 20, flags: [], sequence: 0, payload: ByteBuffer(bytes: [2, 24]))) }
        #expect(RouteNetlink.dumpAddresses(sequence: 4).type == 22 && RouteNetlink.dumpAddresses(sequence: 4).payload.readableBytes == 8)
    }

    @Test func linkMessagesSayWhetherTheLinkCarries() throws {
        func link(_ flags: UInt32, type: UInt16 = RouteNetlink.newLink) throws -> RouteNetlink.Link? {
            var payload = ByteBuffer(bytes: [0, 0, 1, 0])
            payload.writeInteger(Int32(5), endianness: .host)
            payload.writeInteger(flags, endianness: .host)
            payload.writeInteger(UInt32(0), endianness: .host)
            NetlinkAttribute.string(3, "wan2").write(to: &payload)
            return try RouteNetlink.link(from: NetlinkMessage(type: type, flags: [], sequence: 0, payload: payload))
        }
        #expect(try link(0x1_0043)?.isUp == true, "UP, RUNNING, LOWER_UP")
        #expect(try link(0x1003)?.isUp == false, "up but no carrier")
        #expect(try link(0x1_0042)?.isUp == false, "carrier but administratively down")
        #expect(try link(0x1_0043, type: RouteNetlink.deleteLink)?.isUp == false)
        #expect(try link(0x1_0043)?.name == "wan2" && (try link(0x1_0043))?.index == 5)
    }
}
