import NIOCore
import RSerPoolWire

/// What a stream decoder hands up the pipeline: a message, or a message that arrived whole
/// but could not be decoded (the stream stays usable; the peer gets an error reply).
public enum RSerPoolInbound<Message: Sendable>: Sendable {
    case message(Message)
    case malformed(RSerPoolWireError)
}

/// ASAP as it comes off an association: decoded messages with their unrecognized parameters.
public typealias ASAPInbound = RSerPoolInbound<DecodedASAPMessage>
/// ENRP as it comes off an association.
public typealias ENRPInbound = RSerPoolInbound<ENRPMessage>

/// Frames ASAP or ENRP messages on a byte stream (TCP, MPTCP) by the length in their common
/// header. A frame whose header is impossible (length < 4 or above the limit) is an error that
/// ends the stream; a whole frame with a bad body becomes `.malformed` and decoding goes on.
public struct RSerPoolStreamDecoder<Message: Sendable>: ByteToMessageDecoder {
    public typealias InboundOut = RSerPoolInbound<Message>
    public let limits: WireLimits
    private let decodeFrame: @Sendable (ByteBuffer, WireLimits) throws(RSerPoolWireError) -> Message

    public init(limits: WireLimits, decodeFrame: @escaping @Sendable (ByteBuffer, WireLimits) throws(RSerPoolWireError) -> Message) {
        self.limits = limits
        self.decodeFrame = decodeFrame
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try RSerPoolFraming.nextFrame(from: &buffer, limits: limits) else { return .needMoreData }
        do {
            context.fireChannelRead(wrapInboundOut(.message(try decodeFrame(frame, limits))))
        } catch {
            context.fireChannelRead(wrapInboundOut(.malformed(error)))
        }
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Writes each message as one buffer, so that it leaves in one `write` (and, with
/// TCP_NODELAY, normally in one segment).
public struct RSerPoolMessageEncoder<Message>: MessageToByteEncoder {
    public typealias OutboundIn = Message
    private let write: (Message, inout ByteBuffer) -> Void
    public init(write: @escaping (Message, inout ByteBuffer) -> Void) { self.write = write }
    public func encode(data: Message, out: inout ByteBuffer) throws { write(data, &out) }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the ASAP decoder and encoder.
    public func addASAPCodec(limits: WireLimits = .default) throws {
        try addHandler(ByteToMessageHandler(RSerPoolStreamDecoder(limits: limits) { frame, limits throws(RSerPoolWireError) in
            try ASAPMessage.decode(frame: frame, limits: limits)
        }))
        try addHandler(MessageToByteHandler(RSerPoolMessageEncoder<ASAPMessage> { $1.writeASAPMessage($0) }))
    }

    /// Adds the ASAP reader under an association's limits (see `AssociationReader`) and the encoder.
    ///
    /// A registration whose pool handle is longer than the limit is still decoded (the message
    /// itself is bounded), so that the registrar can refuse it the way RFC 5352 §3.3 says: a
    /// Registration Response with the reject flag, not an ASAP Error.
    public func addGuardedASAPCodec(limits: AssociationLimits, wireLimits: WireLimits) throws {
        try addHandler(AssociationReader<DecodedASAPMessage>(limits: limits, wireLimits: wireLimits) { frame, limits throws(RSerPoolWireError) in
            do throws(RSerPoolWireError) {
                return try ASAPMessage.decode(frame: frame, limits: limits)
            } catch {
                guard error.code == .poolHandleTooLong,
                      frame.getInteger(at: frame.readerIndex, as: UInt8.self) == ASAPMessageType.registration.rawValue else { throw error }
                var relaxed = limits
                relaxed.maximumPoolHandleLength = limits.maximumMessageSize
                return try ASAPMessage.decode(frame: frame, limits: relaxed)
            }
        })
        try addHandler(MessageToByteHandler(RSerPoolMessageEncoder<ASAPMessage> { $1.writeASAPMessage($0) }))
    }

    /// Adds the ENRP reader under an association's limits and the encoder.
    public func addGuardedENRPCodec(limits: AssociationLimits, wireLimits: WireLimits) throws {
        try addHandler(AssociationReader<ENRPMessage>(limits: limits, wireLimits: wireLimits) { frame, limits throws(RSerPoolWireError) in
            try ENRPMessage.decode(frame: frame, limits: limits)
        })
        try addHandler(MessageToByteHandler(RSerPoolMessageEncoder<ENRPMessage> { $1.writeENRPMessage($0) }))
    }

    /// Adds the ENRP decoder and encoder.
    public func addENRPCodec(limits: WireLimits = .default) throws {
        try addHandler(ByteToMessageHandler(RSerPoolStreamDecoder(limits: limits) { frame, limits throws(RSerPoolWireError) in
            try ENRPMessage.decode(frame: frame, limits: limits)
        }))
        try addHandler(MessageToByteHandler(RSerPoolMessageEncoder<ENRPMessage> { $1.writeENRPMessage($0) }))
    }
}
