import NIOCore

/// A decoding failure: what was wrong, where, which Operation Error cause answers it, and the
/// offending bytes (capped) for the log line.
public struct RSerPoolWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem the decoder found.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The header's length field is below 4 or does not fit the bytes available.
        public static let invalidLength = Code(name: "invalid length")
        /// The message is larger than the configured limit.
        public static let messageTooLarge = Code(name: "message too large")
        /// The bytes end before the declared length.
        public static let truncated = Code(name: "truncated")
        /// A message type this decoder does not know.
        public static let unrecognizedMessage = Code(name: "unrecognized message type")
        /// An unknown parameter whose action bits say "stop processing".
        public static let unrecognizedParameter = Code(name: "unrecognized parameter")
        /// A parameter the message requires is absent.
        public static let missingParameter = Code(name: "missing parameter")
        /// A value is outside what the RFC allows (wrong fixed size, bad address count, …).
        public static let invalidValue = Code(name: "invalid value")
        /// Bytes remain after the last parameter of a fixed-layout value.
        public static let trailingBytes = Code(name: "trailing bytes")
        /// A pool handle longer than the configured limit.
        public static let poolHandleTooLong = Code(name: "pool handle too long")
        /// More elements than a limit allows (PEs, addresses, policy values).
        public static let tooManyItems = Code(name: "too many items")
    }

    /// Bytes of the offending message kept for diagnostics.
    public static let maximumDiagnosticBytes = 64

    public var code: Code
    /// The message type byte, when the header was readable.
    public var messageType: UInt8?
    /// The parameter type involved, if any.
    public var parameterType: UInt16?
    /// A sentence a person can act on.
    public var detail: String
    /// The Operation Error cause to report to the peer (RFC 5352 §2.2.13, RFC 5354 §3.11).
    public var cause: ErrorCauseCode
    /// Whether the protocol says to report this to the sender (ASAP Error / Operation Error).
    public var shouldReport: Bool
    /// The cause information for the report: the unrecognized parameter or message, padded.
    public var causeInformation: [UInt8]
    /// At most `maximumDiagnosticBytes` of the offending input, for logs.
    public var bytes: [UInt8]

    public init(
        _ code: Code, _ detail: String, messageType: UInt8? = nil, parameterType: UInt16? = nil,
        cause: ErrorCauseCode = .invalidValues, shouldReport: Bool = true,
        causeInformation: [UInt8] = [], bytes: ByteBuffer? = nil
    ) {
        self.code = code
        self.detail = detail
        self.messageType = messageType
        self.parameterType = parameterType
        self.cause = cause
        self.shouldReport = shouldReport
        self.causeInformation = causeInformation
        if let bytes {
            self.bytes = bytes.getBytes(at: bytes.readerIndex, length: min(bytes.readableBytes, Self.maximumDiagnosticBytes)) ?? []
        } else {
            self.bytes = []
        }
    }

    public var description: String {
        var text = "\(code): \(detail)"
        if let messageType { text += " (message type 0x\(String(messageType, radix: 16)))" }
        if let parameterType { text += " (parameter type 0x\(String(parameterType, radix: 16)))" }
        return text
    }

    /// The same error with the message type filled in (decoders of bodies do not know it).
    func inMessage(_ type: UInt8) -> RSerPoolWireError {
        var copy = self
        if copy.messageType == nil { copy.messageType = type }
        return copy
    }
}
