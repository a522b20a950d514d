import Crypto
import NIOCore

/// The first bytes an entry gateway sends to an exit gateway on each carried connection
/// (hybrid access, one MPTCP connection per client connection):
///
/// ```
/// "EPGW" | version (1) | reserved (1) | time, ms since 1970 (8) | nonce (16)
///        | destination (SOCKS5 ATYP, address, port) | HMAC-SHA256 over everything before (32)
/// ```
///
/// The client's bytes may follow at once (no extra round trip). The exit answers with one
/// byte, a SOCKS5 reply code (0: connected), and then relays. A header whose tag does not
/// verify under the pair's shared secret, whose time is off by more than
/// ``PairHeader/maximumClockSkewMilliseconds``, or whose nonce was seen before is refused.
public struct PairHeader: Hashable, Sendable {
    public static let magic: [UInt8] = Array("EPGW".utf8)
    public static let version: UInt8 = 1
    public static let nonceLength = 16
    public static let tagLength = 32
    public static let maximumClockSkewMilliseconds: UInt64 = 30_000
    /// magic + version + reserved + time + nonce + longest destination (1 + 1 + 255 + 2) + tag.
    public static let maximumLength = 4 + 2 + 8 + nonceLength + 259 + tagLength

    public var destination: ProxyDestination
    public var timeMilliseconds: UInt64
    public var nonce: [UInt8]

    public init(destination: ProxyDestination, timeMilliseconds: UInt64, nonce: [UInt8]) {
        precondition(nonce.count == Self.nonceLength)
        self.destination = destination
        self.timeMilliseconds = timeMilliseconds
        self.nonce = nonce
    }

    /// The header with its tag.
    public func encoded(secret: PairSecret) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(Self.version)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(timeMilliseconds)
        buffer.writeBytes(nonce)
        destination.write(to: &buffer)
        let tag = HMAC<SHA256>.authenticationCode(for: Array(buffer.readableBytesView), using: secret.key)
        buffer.writeBytes(Array(tag))
        return buffer
    }

    /// Reads and verifies a header. Nil if more bytes are needed (nothing consumed).
    public static func read(from buffer: inout ByteBuffer, secret: PairSecret, nowMilliseconds: UInt64,
                            replayGuard: inout PairReplayGuard) throws(PairHeaderError) -> PairHeader? {
        var copy = buffer
        guard let magic = copy.readBytes(length: 4) else { return nil }
        guard magic == Self.magic else { throw .notAPairHeader }
        guard let version = copy.readInteger(as: UInt8.self), copy.readInteger(as: UInt8.self) != nil else { return nil }
        guard version == Self.version else { throw .unsupportedVersion(version) }
        guard let time = copy.readInteger(as: UInt64.self), let nonce = copy.readBytes(length: nonceLength) else { return nil }
        let destination: ProxyDestination
        do {
            guard let parsed = try ProxyDestination.read(from: &copy) else { return nil }
            destination = parsed
        } catch {
            throw .malformedDestination(error)
        }
        let signedLength = copy.readerIndex - buffer.readerIndex
        guard let tag = copy.readBytes(length: tagLength) else { return nil }
        let signed = buffer.getSlice(at: buffer.readerIndex, length: signedLength)!
        guard HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: Array(signed.readableBytesView), using: secret.key) else {
            throw .badTag
        }
        let skew = time > nowMilliseconds ? time - nowMilliseconds : nowMilliseconds - time
        guard skew <= maximumClockSkewMilliseconds else { throw .stale(skewMilliseconds: skew) }
        guard replayGuard.admit(nonce: nonce, timeMilliseconds: time, nowMilliseconds: nowMilliseconds) else { throw .replayed }
        buffer = copy
        return PairHeader(destination: destination, timeMilliseconds: time, nonce: nonce)
    }
}

/// The secret an entry and an exit gateway share.
public struct PairSecret: Sendable {
    private let bytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: bytes) }
    /// At least 16 bytes; in the configuration it is a string (use a long random one).
    public init(_ text: String) throws(PairHeaderError) {
        guard text.utf8.count >= 16 else { throw .secretTooShort }
        bytes = Array(text.utf8)
    }
}

/// Nonces seen within the clock-skew window; a nonce seen twice is a replay. Bounded: when
/// ``maximumEntries`` nonces are live, new headers are refused until old ones expire.
public struct PairReplayGuard: Sendable {
    public static let maximumEntries = 200_000
    private var seen: Set<[UInt8]> = []
    private var order: [(expiry: UInt64, nonce: [UInt8])] = []
    private var head = 0

    public init() {}

    public var count: Int { seen.count }

    mutating func admit(nonce: [UInt8], timeMilliseconds: UInt64, nowMilliseconds: UInt64) -> Bool {
        while head < order.count, order[head].expiry < nowMilliseconds {
            seen.remove(order[head].nonce)
            head += 1
        }
        if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        guard seen.count < Self.maximumEntries, !seen.contains(nonce) else { return false }
        seen.insert(nonce)
        // Kept until the header could no longer pass the time check.
        let expiry = max(timeMilliseconds, nowMilliseconds) + PairHeader.maximumClockSkewMilliseconds
        // Expiries arrive nearly in order; keeping the queue sorted keeps pruning exact.
        var index = order.count
        while index > head, order[index - 1].expiry > expiry { index -= 1 }
        order.insert((expiry, nonce), at: index)
        return true
    }
}

public enum PairHeaderError: Error, Hashable, Sendable, CustomStringConvertible {
    case notAPairHeader
    case unsupportedVersion(UInt8)
    case malformedDestination(ProxyDestinationError)
    case badTag
    case stale(skewMilliseconds: UInt64)
    case replayed
    case secretTooShort

    public var description: String {
        switch self {
        case .notAPairHeader: "not an EdgePool gateway-pair header"
        case .unsupportedVersion(let v): "unsupported pair header version \(v)"
        case .malformedDestination(let e): "malformed destination: \(e)"
        case .badTag: "authentication tag does not verify (wrong shared secret?)"
        case .stale(let skew): "header time is \(skew) ms off (clocks apart, or a replay)"
        case .replayed: "nonce seen before (replay) or replay table full"
        case .secretTooShort: "the pair secret must be at least 16 bytes"
        }
    }
}
