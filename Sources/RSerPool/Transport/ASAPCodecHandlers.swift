import NIOCore
import RSerPoolWire

/// What the ASAP decoder hands up the pipeline: a message, or a message that arrived whole
/// but could not be decoded (the stream stays usable; the peer gets an ASAP Error).
public enum ASAPInbound: Sendable {
    case message(DecodedASAPMessage)
    case malformed(RSerPoolWireError)
}

/// Frames ASAP messages on a byte stream (TCP, MPTCP) by their length field. A frame whose
/// header is impossible (length < 4 or above the limit) is an error that ends the stream; a
/// whole frame with a bad body becomes `.malformed` and decoding goes on.
public struct ASAPMessageDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ASAPInbound
    public let limits: WireLimits

    public init(limits: WireLimits = .default) { self.limits = limits }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try RSerPoolFraming.nextFrame(from: &buffer, limits: limits) else { return .needMoreData }
        do {
            let message = try ASAPMessage.decode(frame: frame, limits: limits)
            context.fireChannelRead(wrapInboundOut(.message(message)))
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

/// Writes each ASAP message as one buffer, so that it leaves in one `write` (and, with
/// TCP_NODELAY, normally in one segment).
public struct ASAPMessageEncoder: MessageToByteEncoder {
    public typealias OutboundIn = ASAPMessage
    public init() {}
    public func encode(data: ASAPMessage, out: inout ByteBuffer) throws {
        out.writeASAPMessage(data)
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the ASAP decoder and encoder.
    public func addASAPCodec(limits: WireLimits = .default) throws {
        try addHandler(ByteToMessageHandler(ASAPMessageDecoder(limits: limits)))
        try addHandler(MessageToByteHandler(ASAPMessageEncoder()))
    }
}
