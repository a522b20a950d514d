import NIOCore

/// Cuts a byte stream into ASAP/ENRP messages by the length in their common header
/// (`type u8 | flags u8 | length u16`). The length excludes the trailing padding, which the
/// sender transmits, so a frame is `length` rounded up to a multiple of four.
///
/// This is what lets ASAP and ENRP run over TCP and MPTCP: the messages frame themselves.
public enum RSerPoolFraming {
    /// The bytes of the common message header.
    public static let headerSize = 4

    /// The next whole frame at the front of `buffer`, or nil when more bytes are needed.
    ///
    /// Throws when the header is impossible (length < 4 or above the limit): the stream can then
    /// not be resynchronised and the association must be closed. `buffer` is left unchanged
    /// unless a frame is returned.
    public static func nextFrame(from buffer: inout ByteBuffer, limits: WireLimits = .default) throws(RSerPoolWireError) -> ByteBuffer? {
        guard buffer.readableBytes >= headerSize,
              let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self)
        else { return nil }
        guard length >= headerSize else {
            throw RSerPoolWireError(.invalidLength, "message declares length \(length) < 4", messageType: type,
                                    cause: .invalidValues, bytes: buffer)
        }
        guard Int(length) <= limits.maximumMessageSize else {
            throw RSerPoolWireError(.messageTooLarge, "message of \(length) bytes exceeds the limit of \(limits.maximumMessageSize)",
                                    messageType: type, cause: .lackOfResources, bytes: buffer)
        }
        let frameSize = paddedLength(Int(length))
        guard buffer.readableBytes >= frameSize else { return nil }
        return buffer.readSlice(length: frameSize)
    }

    /// The size of the whole frame at the start of `buffer` if it is all there, nil if more bytes
    /// are needed; throws like `nextFrame`. Consumes nothing.
    public static func peekFrameLength(_ buffer: ByteBuffer, limits: WireLimits = .default) throws(RSerPoolWireError) -> Int? {
        var copy = buffer
        return try nextFrame(from: &copy, limits: limits)?.readableBytes
    }

    /// Splits a frame into type, flags and the body (without header and trailing padding).
    static func split(_ frame: ByteBuffer) throws(RSerPoolWireError) -> (type: UInt8, flags: UInt8, body: ByteBuffer) {
        guard frame.readableBytes >= headerSize,
              let type = frame.getInteger(at: frame.readerIndex, as: UInt8.self),
              let flags = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self),
              let length = frame.getInteger(at: frame.readerIndex + 2, as: UInt16.self)
        else { throw RSerPoolWireError(.truncated, "\(frame.readableBytes) bytes cannot hold a message header", bytes: frame) }
        guard length >= headerSize, Int(length) <= frame.readableBytes else {
            throw RSerPoolWireError(.invalidLength, "message declares \(length) bytes, \(frame.readableBytes) present",
                                    messageType: type, bytes: frame)
        }
        guard frame.readableBytes - Int(length) < 4 else {
            throw RSerPoolWireError(.trailingBytes, "\(frame.readableBytes - Int(length)) bytes follow a \(length)-byte message",
                                    messageType: type, bytes: frame)
        }
        let body = frame.getSlice(at: frame.readerIndex + headerSize, length: Int(length) - headerSize)!
        return (type, flags, body)
    }

    /// Writes the common header with a placeholder length; returns the start for `finish`.
    static func begin(type: UInt8, flags: UInt8, into buffer: inout ByteBuffer) -> Int {
        let start = buffer.writerIndex
        buffer.writeInteger(type)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(0))
        return start
    }

    /// Sets the length (header + body, without trailing padding) and writes the padding.
    static func finish(start: Int, into buffer: inout ByteBuffer) {
        let length = buffer.writerIndex - start
        precondition(length <= WireLimits.absoluteMaximumMessageSize, "message of \(length) bytes does not fit the 16-bit length")
        buffer.setInteger(UInt16(length), at: start + 2)
        buffer.writePadding(since: start)
    }
}
