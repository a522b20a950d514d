import NIOCore

/// The state a PE hands its PU so that another PE can resume the job after a failover:
/// `{jobID, jobSize, completed}` as in the reference implementation, followed by a 64-bit
/// SipHash-2-4 tag over those 20 bytes under the pool's secret. A PE accepts a Cookie Echo only
/// if the tag is right: a PU cannot make a PE claim work it never did (it would need the
/// pool's secret), and a damaged cookie is refused.
public struct CalcAppCookie: Hashable, Sendable {
    public static let size = 28
    public var jobID: UInt32
    public var jobSize: UInt64
    public var completed: UInt64

    public init(jobID: UInt32, jobSize: UInt64, completed: UInt64) {
        self.jobID = jobID
        self.jobSize = jobSize
        self.completed = completed
    }

    private var body: [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(jobID)
        buffer.writeInteger(jobSize)
        buffer.writeInteger(completed)
        return Array(buffer: buffer)
    }

    /// The cookie with its tag.
    public func sealed(with secret: CookieSecret) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: body)
        buffer.writeInteger(secret.mac.hash(body))
        return buffer
    }

    /// Verifies and decodes a sealed cookie.
    public init(opening sealed: ByteBuffer, with secret: CookieSecret) throws(CalcAppError) {
        var buffer = sealed
        guard buffer.readableBytes == Self.size, let jobID = buffer.readInteger(as: UInt32.self),
              let jobSize = buffer.readInteger(as: UInt64.self), let completed = buffer.readInteger(as: UInt64.self),
              let tag = buffer.readInteger(as: UInt64.self) else {
            throw CalcAppError(.forgedCookie, "a cookie is \(Self.size) bytes, got \(sealed.readableBytes)")
        }
        self.init(jobID: jobID, jobSize: jobSize, completed: completed)
        guard secret.mac.hash(body) == tag else { throw CalcAppError(.forgedCookie, "the tag does not match (wrong pool secret or altered)") }
        guard completed <= jobSize else { throw CalcAppError(.forgedCookie, "completed \(completed) exceeds the job size \(jobSize)") }
    }
}

/// The secret every PE of a pool shares for sealing cookies.
public struct CookieSecret: Sendable, Hashable {
    let mac: SipHash24
    public init(key0: UInt64, key1: UInt64) { mac = SipHash24(key0: key0, key1: key1) }
    /// A secret derived from a passphrase (for configuration files).
    public init(passphrase: String) {
        let fixed = SipHash24(key0: 0x4564_6765_506F_6F6C, key1: 0x4361_6C63_4170_7031)
        let bytes = Array(passphrase.utf8)
        self.init(key0: fixed.hash(bytes + [0]), key1: fixed.hash(bytes + [1]))
    }
    public static func == (a: Self, b: Self) -> Bool { a.mac.key0 == b.mac.key0 && a.mac.key1 == b.mac.key1 }
    public func hash(into hasher: inout Hasher) { hasher.combine(mac.key0); hasher.combine(mac.key1) }
}
