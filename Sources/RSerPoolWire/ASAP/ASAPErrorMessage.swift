import NIOCore

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

func readOperationError(_ reader: inout ParameterReader, context: String) throws(RSerPoolWireError) -> OperationError {
    try OperationError.decode(reader.expect(.operationError, in: context))
}
