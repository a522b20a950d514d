import NIOCore

/// Rounds `length` up to the next multiple of four, the alignment of every ASAP/ENRP message
/// and parameter (RFC 5354 §2.1).
@inlinable
public func paddedLength(_ length: Int) -> Int { (length + 3) & ~3 }

extension ByteBuffer {
    /// Writes zero bytes until the bytes written since `start` are a multiple of four.
    @inlinable
    mutating func writePadding(since start: Int) {
        let written = self.writerIndex - start
        let padding = paddedLength(written) - written
        if padding > 0 { self.writeRepeatingByte(0, count: padding) }
    }

    /// Writes a TLV: type, a placeholder length, the value produced by `body`, then the real
    /// length (header + value, without padding) and the padding (RFC 5354 §2.1).
    @inlinable
    mutating func writeTLV(type: UInt16, _ body: (inout ByteBuffer) -> Void) {
        let start = self.writerIndex
        self.writeInteger(type)
        self.writeInteger(UInt16(0))
        body(&self)
        let length = self.writerIndex - start
        self.setInteger(UInt16(truncatingIfNeeded: length), at: start + 2)
        self.writePadding(since: start)
    }
}
