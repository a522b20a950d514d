import NIOCore
import RSerPoolWire

/// What the ENRP decoder hands up the pipeline.
public enum ENRPInbound: Sendable {
    case message(ENRPMessage)
    case malformed(RSerPoolWireError)
}

/// Frames ENRP messages on a byte stream by their length field (same rules as ASAP).
public struct ENRPMessageDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ENRPInbound
    public let limits: WireLimits
    public init(limits: WireLimits = .default) { self.limits = limits }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try RSerPoolFraming.nextFrame(from: &buffer, limits: limits) else { return .needMoreData }
        do {
            context.fireChannelRead(wrapInboundOut(.message(try ENRPMessage.decode(frame: frame, limits: limits))))
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

/// Writes each ENRP message as one buffer.
public struct ENRPMessageEncoder: MessageToByteEncoder {
    public typealias OutboundIn = ENRPMessage
    public init() {}
    public func encode(data: ENRPMessage, out: inout ByteBuffer) throws { out.writeENRPMessage(data) }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the ENRP decoder and encoder.
    public func addENRPCodec(limits: WireLimits = .default) throws {
        try addHandler(ByteToMessageHandler(ENRPMessageDecoder(limits: limits)))
        try addHandler(MessageToByteHandler(ENRPMessageEncoder()))
    }
}
