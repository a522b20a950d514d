import CalcApp
import NIOCore

/// What the session decoder hands up: a message, or bytes that are no session message (the
/// session is then ended: the stream cannot be trusted).
enum SessionInbound: Sendable {
    case message(SessionMessage)
    case malformed(CalcAppError)
}

/// Cuts a PU↔PE stream into CalcApp messages (types 1–7, 24 bytes) and ASAP session messages
/// (Cookie, Cookie Echo, Business Card, ASAP Error).
struct SessionMessageDecoder: ByteToMessageDecoder {
    typealias InboundOut = SessionInbound

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        do {
            guard let message = try SessionMessage.decode(from: &buffer) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(.message(message)))
            return .continue
        } catch {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(wrapInboundOut(.malformed(error)))
            return .needMoreData
        }
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

struct SessionMessageEncoder: MessageToByteEncoder {
    typealias OutboundIn = SessionMessage
    func encode(data: SessionMessage, out: inout ByteBuffer) throws { data.write(into: &out) }
}

extension ChannelPipeline.SynchronousOperations {
    func addSessionCodec() throws {
        try addHandler(ByteToMessageHandler(SessionMessageDecoder()))
        try addHandler(MessageToByteHandler(SessionMessageEncoder()))
    }
}
