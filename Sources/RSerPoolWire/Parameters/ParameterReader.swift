import NIOCore

/// One TLV as it appeared on the wire: its type, its value (without header and padding) and
/// the whole parameter (header, value, padding) for an "unrecognized parameter" report.
public struct RawParameter: Sendable {
    public var type: ParameterType
    public var value: ByteBuffer
    public var whole: ByteBuffer
}

/// Walks the TLVs of a message body or of a nested parameter value, applying the RFC 5354
/// action bits to unknown types: `skip` ones are passed over (and remembered when they must be
/// reported), `stop` ones end decoding with an error.
struct ParameterReader {
    private(set) var buffer: ByteBuffer
    /// Unknown parameters whose action bits ask for a report, in the order met.
    private(set) var unrecognizedToReport: [RawParameter] = []

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    var isAtEnd: Bool { buffer.readableBytes == 0 }

    /// The next known parameter, or nil at the end of the bytes.
    mutating func next() throws(RSerPoolWireError) -> RawParameter? {
        while true {
            guard let raw = try nextRaw() else { return nil }
            if raw.type.isKnown { return raw }
            let action = raw.type.unrecognizedAction
            if action.reports { unrecognizedToReport.append(raw) }
            if action.stopsProcessing {
                throw RSerPoolWireError(
                    .unrecognizedParameter,
                    "unrecognized \(raw.type) with action bits '\(action)'",
                    parameterType: raw.type.rawValue, cause: .unrecognizedParameter,
                    shouldReport: action.reports, causeInformation: Array(buffer: raw.whole), bytes: raw.whole)
            }
        }
    }

    /// The next parameter whatever its type.
    mutating func nextRaw() throws(RSerPoolWireError) -> RawParameter? {
        guard buffer.readableBytes > 0 else { return nil }
        guard buffer.readableBytes >= 4,
              let type = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self)
        else {
            throw RSerPoolWireError(.truncated, "\(buffer.readableBytes) bytes cannot hold a parameter header", bytes: buffer)
        }
        let parameterType = ParameterType(type)
        guard length >= 4 else {
            throw RSerPoolWireError(.invalidLength, "\(parameterType) declares length \(length) < 4", parameterType: type, bytes: buffer)
        }
        guard Int(length) <= buffer.readableBytes else {
            throw RSerPoolWireError(.truncated, "\(parameterType) declares \(length) bytes, \(buffer.readableBytes) remain", parameterType: type, bytes: buffer)
        }
        // The last parameter of a container may come without its padding (the container's
        // length excludes trailing padding); any other must be followed by it.
        let consumed = min(paddedLength(Int(length)), buffer.readableBytes)
        let whole = buffer.readSlice(length: consumed)!
        let value = whole.getSlice(at: whole.readerIndex + 4, length: Int(length) - 4)!
        return RawParameter(type: parameterType, value: value, whole: whole)
    }

    /// The next parameter, which must exist and be one of `types`.
    mutating func expect(_ types: ParameterType..., in context: String) throws(RSerPoolWireError) -> RawParameter {
        guard let raw = try next() else {
            throw RSerPoolWireError(.missingParameter, "\(context) lacks \(types.map(\.description).joined(separator: " or "))",
                                    cause: .invalidValues)
        }
        guard types.contains(raw.type) else {
            throw RSerPoolWireError(.invalidValue, "\(context) has \(raw.type) where \(types.map(\.description).joined(separator: " or ")) belongs",
                                    parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        return raw
    }
}

extension ByteBuffer {
    /// Reads exactly `count` bytes worth of fixed fields, or throws.
    mutating func readFixed<T: FixedWidthInteger>(_: T.Type, in context: String) throws(RSerPoolWireError) -> T {
        guard let value = self.readInteger(as: T.self) else {
            throw RSerPoolWireError(.truncated, "\(context) ends early", bytes: self)
        }
        return value
    }

    func requireConsumed(_ context: String, parameterType: ParameterType? = nil) throws(RSerPoolWireError) {
        guard self.readableBytes == 0 else {
            throw RSerPoolWireError(.trailingBytes, "\(context) has \(self.readableBytes) unexpected trailing bytes",
                                    parameterType: parameterType?.rawValue, bytes: self)
        }
    }
}
