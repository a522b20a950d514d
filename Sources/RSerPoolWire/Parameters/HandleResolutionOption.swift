import NIOCore

/// The reference implementation's Handle Resolution Option (0x803F): how many PEs the pool user
/// wants in the response. `UInt32.max` asks for all. Its type has the "skip" bit set, so a
/// registrar that does not know it ignores it.
public struct HandleResolutionOption: Hashable, Sendable {
    public var items: UInt32
    public init(items: UInt32) { self.items = items }
    public static let all = HandleResolutionOption(items: .max)
}

extension ByteBuffer {
    public mutating func writeHandleResolutionOptionParameter(_ option: HandleResolutionOption) {
        writeTLV(type: ParameterType.handleResolutionOption.rawValue) { $0.writeInteger(option.items) }
    }

    /// Writes a Cookie parameter (RFC 5354 §3.13).
    public mutating func writeCookieParameter(_ cookie: ByteBuffer) {
        writeTLV(type: ParameterType.cookie.rawValue) { $0.writeImmutableBuffer(cookie) }
    }

    /// Writes a PE Checksum parameter (RFC 5354 §3.15): the 16-bit checksum, then 2 padding bytes.
    public mutating func writePoolElementChecksumParameter(_ checksum: UInt16) {
        writeTLV(type: ParameterType.poolElementChecksum.rawValue) { $0.writeInteger(checksum) }
    }
}

extension HandleResolutionOption {
    static func decode(_ raw: RawParameter) throws(RSerPoolWireError) -> HandleResolutionOption {
        var value = raw.value
        guard value.readableBytes == 4 else {
            throw RSerPoolWireError(.invalidValue, "Handle Resolution Option has a \(value.readableBytes)-byte value", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        return HandleResolutionOption(items: value.readInteger()!)
    }
}
