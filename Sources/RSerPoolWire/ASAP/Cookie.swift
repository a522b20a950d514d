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

func readCookie(_ reader: inout ParameterReader, context: String) throws(RSerPoolWireError) -> ByteBuffer {
    try reader.expect(.cookie, in: context).value
}
