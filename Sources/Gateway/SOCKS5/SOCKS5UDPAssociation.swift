import NIOCore
import RSerPoolWire

/// The rules of one SOCKS5 UDP association (RFC 1928 §7) as a state machine: no sockets, no
/// clocks. It decides which datagrams from the client are relayed (only from the client's
/// address, and from one port: the one the request named, or else the first one used),
/// which answers go back (only from peers the client sent to: the relay is no open door
/// into the client), and frames them.
///
/// ```swift
/// var association = SOCKS5UDPAssociation(client: controlPeerAddress, requested: requestDestination)
/// switch association.fromClient(source, datagram: bytes) {
/// case .relay(let destination, let payload): resolve, check policy, send; then association.sent(to: peer)
/// case .drop(let reason): count and log it
/// }
/// switch association.fromPeer(source, payload: bytes) {
/// case .deliver(let client, let datagram): send datagram to client
/// case .drop(let reason): count it
/// }
/// ```
public struct SOCKS5UDPAssociation: Sendable {
    /// Peers whose answers are let through at once (least recently used forgotten first).
    public static let maximumPeers = 256
    /// The largest UDP payload over IPv4 (65,535 − 20 − 8).
    public static let maximumDatagram = 65_507

    /// An IP address and port; IPv4-mapped IPv6 addresses are kept as IPv4.
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        public var address: IPAddress
        public var port: UInt16

        public init(address: IPAddress, port: UInt16) {
            self.address = address.unmappedIPv4
            self.port = port
        }

        public init?(_ socketAddress: SocketAddress) {
            guard let ip = IPAddress(socketAddress), let port = socketAddress.port, let port16 = UInt16(exactly: port) else { return nil }
            self.init(address: ip, port: port16)
        }

        public var description: String { ProxyDestination(host: .address(address), port: port).description }
    }

    public enum ClientDatagram: Hashable, Sendable {
        /// Send `payload` to `destination` (after resolving a name and checking the policy),
        /// then call `sent(to:)` with the address it went to.
        case relay(ProxyDestination, payload: ByteBuffer)
        case drop(SOCKS5UDPDropReason)
    }

    public enum PeerDatagram: Hashable, Sendable {
        /// Send `datagram` (header + payload) to the client.
        case deliver(to: Endpoint, datagram: ByteBuffer)
        case drop(SOCKS5UDPDropReason)
    }

    /// The client's address: the source of its control connection.
    public let clientAddress: IPAddress
    /// The client's port: named in the request, or learnt from its first datagram.
    public private(set) var clientPort: UInt16?
    private var peers: [Endpoint: UInt64] = [:]
    private var clock: UInt64 = 0

    /// - Parameters:
    ///   - client: the source address of the control connection.
    ///   - requested: DST.ADDR/DST.PORT of the UDP ASSOCIATE request; a non-zero port is
    ///     the only one datagrams are taken from. (The address is not trusted: a client
    ///     behind NAT does not know its own, and another host's address must not be named.)
    public init(client: IPAddress, requested: ProxyDestination) {
        clientAddress = client.unmappedIPv4
        clientPort = requested.port == 0 ? nil : requested.port
    }

    /// A datagram arrived on the client-facing socket.
    public mutating func fromClient(_ source: Endpoint, datagram: ByteBuffer) -> ClientDatagram {
        guard source.address == clientAddress, clientPort == nil || clientPort == source.port else {
            return .drop(.notFromClient(source.description))
        }
        var payload = datagram
        let header: SOCKS5UDPHeader
        do {
            header = try SOCKS5UDPHeader.read(from: &payload)
        } catch {
            return .drop(.malformed(error))
        }
        guard header.fragment == 0 else { return .drop(.fragmented(header.fragment)) }
        if clientPort == nil { clientPort = source.port }
        return .relay(header.address, payload: payload)
    }

    /// Records that the client sent to `peer`: its answers are delivered from now on.
    public mutating func sent(to peer: Endpoint) {
        clock += 1
        peers[peer] = clock
        if peers.count > Self.maximumPeers, let oldest = peers.min(by: { $0.value < $1.value })?.key {
            peers[oldest] = nil
        }
    }

    /// Peers answers are taken from now.
    public var peerCount: Int { peers.count }

    /// A datagram arrived from `source` on an outward socket.
    public mutating func fromPeer(_ source: Endpoint, payload: ByteBuffer) -> PeerDatagram {
        guard peers[source] != nil else { return .drop(.unknownPeer(source.description)) }
        guard let clientPort else { return .drop(.unknownPeer(source.description)) }
        let header = SOCKS5UDPHeader(address: ProxyDestination(host: .address(source.address), port: source.port))
        var datagram = ByteBuffer()
        datagram.reserveCapacity(payload.readableBytes + 22)
        header.write(to: &datagram)
        guard datagram.readableBytes + payload.readableBytes <= Self.maximumDatagram else {
            return .drop(.oversize(payload.readableBytes))
        }
        var payload = payload
        datagram.writeBuffer(&payload)
        clock += 1
        peers[source] = clock
        return .deliver(to: Endpoint(address: clientAddress, port: clientPort), datagram: datagram)
    }
}

/// Why a datagram of a UDP association was not relayed: the log line and the metric label.
public enum SOCKS5UDPDropReason: Hashable, Sendable, CustomStringConvertible {
    /// On the client-facing socket, from another address or port than the client's.
    case notFromClient(String)
    case malformed(SOCKS5UDPHeaderError)
    /// FRAG ≠ 0: fragments are not reassembled.
    case fragmented(UInt8)
    /// An answer from a peer the client has not sent to.
    case unknownPeer(String)
    /// An answer too large to carry with its header.
    case oversize(Int)

    public var description: String {
        switch self {
        case .notFromClient(let source): "datagram from \(source), not from the client"
        case .malformed(let error): "malformed header: \(error)"
        case .fragmented(let fragment): "fragment \(fragment) (fragments are not reassembled)"
        case .unknownPeer(let source): "datagram from \(source), which the client has not sent to"
        case .oversize(let size): "answer of \(size) bytes does not fit a datagram with its header"
        }
    }

    /// The metric label.
    public var label: String {
        switch self {
        case .notFromClient: "not_from_client"
        case .malformed: "malformed"
        case .fragmented: "fragmented"
        case .unknownPeer: "unknown_peer"
        case .oversize: "oversize"
        }
    }
}
