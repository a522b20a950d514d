import PathManager
import RSerPoolWire
import Testing

/// The sock_diag answer for one MPTCP subflow, built by hand from `inet_diag.h`, `tcp.h`
/// (tcp_info) and `mptcp.h` (MPTCP_SUBFLOW_ATTR_*).
@Suite struct SockDiagTests {
    static func put<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8]) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }

    /// nlmsghdr + inet_diag_msg + INET_DIAG_INFO (tcp_info, 232 bytes) + INET_DIAG_ULP_INFO
    /// with INET_ULP_INFO_MPTCP: token, flags, local id.
    static func message(token: UInt32, flags: UInt32, localID: UInt8, backoff: UInt8) -> [UInt8] {
        var diag: [UInt8] = [2, 1, 0, 0, 0x9C, 0x40, 0x01, 0xBB]   // AF_INET, ESTABLISHED, 40000 → 443
        diag += [10, 0, 2, 1] + [UInt8](repeating: 0, count: 12) + [10, 0, 9, 1] + [UInt8](repeating: 0, count: 12)
        diag += [UInt8](repeating: 0, count: 72 - diag.count)
        var tcpInfo = [UInt8](repeating: 0, count: 232)
        tcpInfo[4] = backoff   // tcpi_backoff
        tcpInfo.replaceSubrange(120..<128, with: withUnsafeBytes(of: UInt64(1234).littleEndian, Array.init))
        tcpInfo.replaceSubrange(128..<136, with: withUnsafeBytes(of: UInt64(98765).littleEndian, Array.init))
        var attributes: [UInt8] = []
        put(UInt16(4 + 232), into: &attributes); put(UInt16(2), into: &attributes); attributes += tcpInfo
        var subflow: [UInt8] = []
        put(UInt16(8), into: &subflow); put(UInt16(2), into: &subflow); put(token, into: &subflow)             // TOKEN_LOC
        put(UInt16(8), into: &subflow); put(UInt16(8), into: &subflow); put(flags, into: &subflow)             // FLAGS
        put(UInt16(5), into: &subflow); put(UInt16(10), into: &subflow); subflow += [localID, 0, 0, 0]        // ID_LOC (u8, padded)
        var mptcp: [UInt8] = []
        put(UInt16(4 + subflow.count), into: &mptcp); put(UInt16(3 | 0x8000), into: &mptcp); mptcp += subflow
        put(UInt16(4 + mptcp.count), into: &attributes); put(UInt16(19), into: &attributes); attributes += mptcp
        var message: [UInt8] = []
        put(UInt32(16 + diag.count + attributes.count), into: &message)
        put(UInt16(20), into: &message); put(UInt16(2), into: &message); put(UInt32(1), into: &message); put(UInt32(0), into: &message)
        return message + diag + attributes
    }

    @Test func aSubflowIsReadAndGarbageAfterItEndsTheParse() {
        // MCAP_LOC | BKUP_LOC | FULLY_ESTABLISHED: the first subflow, marked backup here.
        let bytes = Self.message(token: 0xCAFE, flags: 0x2 | 0x20 | 0x40, localID: 0, backoff: 3) + [0xFF, 0xFF, 0xFF]
        let expected = SockDiag.Subflow(token: 0xCAFE, localAddress: IPAddress("10.0.2.1")!, localPort: 40000, remoteAddress: IPAddress("10.0.9.1")!,
                                        remotePort: 443, bytesAcked: 1234, bytesReceived: 98765, failing: true, localID: 0, initial: true, backup: true)
        #expect(SockDiag.parse(bytes) == .subflows([expected]))
        #expect(expected.local == "10.0.2.1:40000" && expected.remote == "10.0.9.1:443")
        #expect(SockDiag.parse([]) == .subflows([]))
        #expect(SockDiag.dumpRequest(family: 2, sequence: 9).count == 72)
    }

    @Test func aJoinedSubflowCarriesItsAddressID() {
        // JOIN_LOC | FULLY_ESTABLISHED, id 2, no back-off.
        guard case .subflows(let subflows) = SockDiag.parse(Self.message(token: 7, flags: 0x8 | 0x40, localID: 2, backoff: 0)) else {
            Issue.record("not parsed")
            return
        }
        #expect(subflows.map(\.localID) == [2] && subflows.map(\.initial) == [false] && subflows.map(\.backup) == [false] && subflows.map(\.failing) == [false])
    }
}
