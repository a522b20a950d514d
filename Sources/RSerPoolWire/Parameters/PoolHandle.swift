import NIOCore

/// A pool handle (RFC 5354 §3.9): the opaque byte string that names a pool, e.g. "CalcAppPool".
public struct PoolHandle: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral, Comparable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    /// Printable handles as text, others as hex.
    public var description: String {
        if bytes.allSatisfy({ (0x20...0x7E).contains($0) }) { return String(decoding: bytes, as: UTF8.self) }
        return "0x" + bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    public static func < (lhs: PoolHandle, rhs: PoolHandle) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

extension ByteBuffer {
    public mutating func writePoolHandleParameter(_ handle: PoolHandle) {
        writeTLV(type: ParameterType.poolHandle.rawValue) { $0.writeBytes(handle.bytes) }
    }
}

extension PoolHandle {
    static func decode(_ raw: RawParameter, limits: WireLimits) throws(RSerPoolWireError) -> PoolHandle {
        let length = raw.value.readableBytes
        guard length > 0 else {
            throw RSerPoolWireError(.invalidValue, "empty pool handle", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        guard length <= limits.maximumPoolHandleLength else {
            throw RSerPoolWireError(.poolHandleTooLong, "pool handle of \(length) bytes exceeds \(limits.maximumPoolHandleLength)",
                                    parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        return PoolHandle(Array(buffer: raw.value))
    }
}
