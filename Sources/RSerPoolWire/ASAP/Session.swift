import NIOCore

/// ASAP Cookie (RFC 5352 §2.2.11): a PE hands its PU a state snapshot to resume from on another PE.
public struct ASAPCookie: Hashable, Sendable {
    public var cookie: ByteBuffer
    public init(_ cookie: ByteBuffer) { self.cookie = cookie }
}

/// ASAP Cookie Echo (RFC 5352 §2.2.12): after a failover, the PU gives the last cookie to the new PE.
public struct ASAPCookieEcho: Hashable, Sendable {
    public var cookie: ByteBuffer
    public init(_ cookie: ByteBuffer) { self.cookie = cookie }
}

/// ASAP Error (RFC 5352 §2.2.13): reports an error in a received message.
public struct ASAPErrorMessage: Hashable, Sendable {
    public var error: OperationError
    public init(_ error: OperationError) { self.error = error }

    /// The report a receiver sends back for a decoding failure, or nil when the protocol says
    /// to report nothing (an unknown parameter with action bits `00`).
    public init?(reporting failure: RSerPoolWireError) {
        guard failure.shouldReport else { return nil }
        self.error = OperationError(failure.cause, information: failure.causeInformation)
    }
}

func readCookie(_ reader: inout ParameterReader, context: String) throws(RSerPoolWireError) -> ByteBuffer {
    try reader.expect(.cookie, in: context).value
}

func readOperationError(_ reader: inout ParameterReader, context: String) throws(RSerPoolWireError) -> OperationError {
    try OperationError.decode(reader.expect(.operationError, in: context))
}
