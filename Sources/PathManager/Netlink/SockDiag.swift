import RSerPoolWire

/// The sock_diag netlink messages that show MPTCP subflows (Linux `inet_diag.h`, `tcp_diag`,
/// `mptcp/diag.c`): a dump request for TCP sockets with tcp_info and ULP info, and a parser
/// for the answer. The gateway's telemetry reads bytes and health per subflow from it; the
/// path manager, restarted, finds the connections it managed before. Pure bytes in, values
/// out; the socket lives in PathManagerService (`SockDiagDump`).
public enum SockDiag {
    /// NETLINK_SOCK_DIAG protocol number and message types.
    public static let netlinkProtocol: Int32 = 4
    static let sockDiagByFamily: UInt16 = 20
    static let messageDone: UInt16 = 3
    static let messageError: UInt16 = 2
    static let requestFlags: UInt16 = 0x1 | 0x300   // NLM_F_REQUEST | NLM_F_DUMP
    static let diagInfo: UInt16 = 2                  // INET_DIAG_INFO
    static let diagULPInfo: UInt16 = 19              // INET_DIAG_ULP_INFO
    static let ulpInfoMPTCP: UInt16 = 3              // INET_ULP_INFO_MPTCP
    static let subflowTokenLocal: UInt16 = 2         // MPTCP_SUBFLOW_ATTR_TOKEN_LOC
    static let subflowFlags: UInt16 = 8              // MPTCP_SUBFLOW_ATTR_FLAGS
    static let subflowLocalID: UInt16 = 10           // MPTCP_SUBFLOW_ATTR_ID_LOC
    static let flagCapableLocal: UInt32 = 0x2        // MPTCP_SUBFLOW_FLAG_MCAP_LOC: the first subflow
    static let flagBackupLocal: UInt32 = 0x20        // MPTCP_SUBFLOW_FLAG_BKUP_LOC
    static let tcpInfoCAStateOffset = 1
    static let tcpInfoBackoffOffset = 4
    static let tcpCALoss: UInt8 = 4
    static let tcpInfoBytesAckedOffset = 120
    static let tcpInfoBytesReceivedOffset = 128
    static let diagMessageLength = 72

    /// A TCP socket the kernel listed that is an MPTCP subflow.
    public struct Subflow: Hashable, Sendable {
        /// The MPTCP connection's local token (`mptcpi_token` of the MPTCP socket).
        public var token: UInt32
        /// IPv4 as IPv4 (not v4-mapped IPv6); ports in host order.
        public var localAddress: IPAddress
        public var localPort: UInt16
        public var remoteAddress: IPAddress
        public var remotePort: UInt16
        public var bytesAcked: UInt64
        public var bytesReceived: UInt64
        /// The path looks broken: repeated retransmission timeouts (RTO backoff ≥ 2) or the
        /// Loss congestion state.
        public var failing: Bool
        /// The local address id the subflow carries (0: the connection's first address).
        public var localID: UInt8?
        /// The connection's first subflow (the one that carried MP_CAPABLE).
        public var initial: Bool
        /// This host marked it backup.
        public var backup: Bool

        public init(token: UInt32, localAddress: IPAddress, localPort: UInt16, remoteAddress: IPAddress, remotePort: UInt16,
                    bytesAcked: UInt64 = 0, bytesReceived: UInt64 = 0, failing: Bool = false, localID: UInt8? = nil, initial: Bool = false, backup: Bool = false) {
            self.token = token
            self.localAddress = localAddress
            self.localPort = localPort
            self.remoteAddress = remoteAddress
            self.remotePort = remotePort
            self.bytesAcked = bytesAcked
            self.bytesReceived = bytesReceived
            self.failing = failing
            self.localID = localID
            self.initial = initial
            self.backup = backup
        }

        /// `ADDR:PORT`, `[V6]:PORT`.
        public var local: String { Self.endpoint(localAddress, localPort) }
        public var remote: String { Self.endpoint(remoteAddress, remotePort) }

        private static func endpoint(_ ip: IPAddress, _ port: UInt16) -> String {
            if case .v6 = ip { return "[\(ip)]:\(port)" }
            return "\(ip):\(port)"
        }
    }

    /// A dump request for established TCP sockets of one family (AF_INET 2, AF_INET6 10)
    /// with tcp_info (which brings the ULP info along for CAP_NET_ADMIN).
    public static func dumpRequest(family: UInt8, sequence: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        put(UInt32(16 + 56)); put(sockDiagByFamily); put(requestFlags); put(sequence); put(UInt32(0))
        bytes += [family, 6 /* IPPROTO_TCP */, UInt8(1 << (diagInfo - 1)), 0]
        put(UInt32(1 << 1))   // TCP_ESTABLISHED only
        bytes += [UInt8](repeating: 0, count: 48)   // inet_diag_sockid: any
        return bytes
    }

    public enum Part: Hashable, Sendable {
        case subflows([Subflow])
        /// NLMSG_DONE: the dump is complete.
        case done
        /// NLMSG_ERROR with this (negative) errno.
        case error(Int32)
    }

    /// Parses one datagram of a dump answer. Malformed bytes end the parse of the datagram
    /// (what was read so far is returned); nothing here traps.
    public static func parse(_ datagram: [UInt8]) -> Part {
        var subflows: [Subflow] = []
        var offset = 0
        while offset + 16 <= datagram.count {
            let length = Int(datagram.loadLittle(UInt32.self, at: offset))
            let type = datagram.loadLittle(UInt16.self, at: offset + 4)
            guard length >= 16, offset + length <= datagram.count else { break }
            if type == messageDone { return .done }
            if type == messageError {
                let code = length >= 20 ? Int32(bitPattern: datagram.loadLittle(UInt32.self, at: offset + 16)) : -1
                return .error(code)
            }
            if type == sockDiagByFamily, length >= 16 + diagMessageLength,
               let subflow = parseSocket(datagram, from: offset + 16, to: offset + length) {
                subflows.append(subflow)
            }
            offset += (length + 3) & ~3
        }
        return .subflows(subflows)
    }

    private static func parseSocket(_ bytes: [UInt8], from start: Int, to end: Int) -> Subflow? {
        let family = bytes[start]
        let sourcePort = UInt16(bytes[start + 4]) << 8 | UInt16(bytes[start + 5])
        let destinationPort = UInt16(bytes[start + 6]) << 8 | UInt16(bytes[start + 7])
        let addressLength = family == 10 ? 16 : 4
        guard let source = IPAddress(bytes: Array(bytes[(start + 8)..<(start + 8 + addressLength)])),
              let destination = IPAddress(bytes: Array(bytes[(start + 24)..<(start + 24 + addressLength)])) else { return nil }
        var token: UInt32?
        var acked: UInt64 = 0, received: UInt64 = 0
        var failing = false
        var localID: UInt8?
        var flags: UInt32 = 0
        forEachAttribute(bytes, from: start + diagMessageLength, to: end) { type, payload in
            switch type {
            case diagInfo where payload.count >= tcpInfoBytesReceivedOffset + 8:
                acked = bytes.loadLittle(UInt64.self, at: payload.lowerBound + tcpInfoBytesAckedOffset)
                received = bytes.loadLittle(UInt64.self, at: payload.lowerBound + tcpInfoBytesReceivedOffset)
                failing = bytes[payload.lowerBound + tcpInfoBackoffOffset] >= 2 || bytes[payload.lowerBound + tcpInfoCAStateOffset] == tcpCALoss
            case diagULPInfo:
                forEachAttribute(bytes, from: payload.lowerBound, to: payload.upperBound) { ulpType, ulpPayload in
                    guard ulpType == ulpInfoMPTCP else { return }
                    forEachAttribute(bytes, from: ulpPayload.lowerBound, to: ulpPayload.upperBound) { attribute, value in
                        switch attribute {
                        case subflowTokenLocal where value.count >= 4: token = bytes.loadLittle(UInt32.self, at: value.lowerBound)
                        case subflowFlags where value.count >= 4: flags = bytes.loadLittle(UInt32.self, at: value.lowerBound)
                        case subflowLocalID where value.count >= 1: localID = bytes[value.lowerBound]
                        default: break
                        }
                    }
                }
            default:
                break
            }
        }
        guard let token else { return nil }
        return Subflow(token: token, localAddress: source.unmappedIPv4, localPort: sourcePort, remoteAddress: destination.unmappedIPv4,
                       remotePort: destinationPort, bytesAcked: acked, bytesReceived: received, failing: failing, localID: localID,
                       initial: flags & flagCapableLocal != 0, backup: flags & flagBackupLocal != 0)
    }

    /// Walks rtattr/nlattr records (length u16, type u16, payload padded to 4) in a range.
    private static func forEachAttribute(_ bytes: [UInt8], from start: Int, to end: Int, _ body: (UInt16, Range<Int>) -> Void) {
        var offset = start
        while offset + 4 <= end {
            let length = Int(bytes.loadLittle(UInt16.self, at: offset))
            let type = bytes.loadLittle(UInt16.self, at: offset + 2) & 0x3FFF   // strip NLA_F_NESTED / NET_BYTEORDER
            guard length >= 4, offset + length <= end else { return }
            body(type, (offset + 4)..<(offset + length))
            offset += (length + 3) & ~3
        }
    }
}

extension Array where Element == UInt8 {
    func loadLittle<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in (0..<MemoryLayout<T>.size).reversed() { value = value << 8 | T(self[offset + index]) }
        return value
    }
}
