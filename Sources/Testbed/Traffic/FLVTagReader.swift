/// Reads an FLV byte stream (what `ffmpeg -f flv` writes) incrementally and yields its tags:
/// the kind, the media timestamp and the size — what a viewer model needs, not the media.
///
/// Layout: a 9-byte header ("FLV", version, flags, header size u32), then repeatedly a 4-byte
/// previous-tag size and a tag: an 11-byte header (type u8, data size u24, timestamp u24,
/// timestamp extension u8, stream id u24) and its data. Tag data is counted and dropped; at
/// most 11 bytes are ever buffered.
public struct FLVTagReader: Sendable {
    public struct Tag: Hashable, Sendable {
        public enum Kind: UInt8, Sendable {
            case audio = 8, video = 9, script = 18
        }
        /// nil for a type FLV does not define.
        public var kind: Kind?
        /// Media time in milliseconds.
        public var timestampMilliseconds: UInt32
        public var dataBytes: Int
        /// A coded video frame (not an AVC/HEVC sequence header or end-of-sequence marker).
        public var isVideoFrame: Bool
    }

    public struct ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    private enum State: Sendable {
        case fileHeader
        case previousTagSize
        case tagHeader
        /// The first data bytes of a video tag (frame type/codec, AVC packet type).
        case videoPeek(Tag)
        case skip(Int)
    }

    private var state = State.fileHeader
    private var collected: [UInt8] = []
    /// Total bytes fed.
    public private(set) var bytes: UInt64 = 0

    public init() {}

    /// Feeds the next bytes of the stream; returns the tags completed by them.
    public mutating func feed(_ input: some Collection<UInt8>) throws(ReadError) -> [Tag] {
        var tags: [Tag] = []
        var rest = input[...]
        bytes += UInt64(input.count)
        while !rest.isEmpty {
            if case .skip(let count) = state {
                let n = min(count, rest.count)
                rest = rest.dropFirst(n)
                state = count - n == 0 ? .previousTagSize : .skip(count - n)
                continue
            }
            let wanted: Int
            switch state {
            case .fileHeader: wanted = 9
            case .previousTagSize: wanted = 4
            case .tagHeader: wanted = 11
            case .videoPeek(let tag): wanted = min(2, tag.dataBytes)
            case .skip: wanted = 0
            }
            let n = min(wanted - collected.count, rest.count)
            collected.append(contentsOf: rest.prefix(n))
            rest = rest.dropFirst(n)
            guard collected.count == wanted else { break }
            let field = collected
            collected.removeAll(keepingCapacity: true)
            switch state {
            case .fileHeader:
                guard field[0] == 0x46, field[1] == 0x4C, field[2] == 0x56 else { throw ReadError(description: "not an FLV stream (no 'FLV' signature)") }
                let size = Int(field[5]) << 24 | Int(field[6]) << 16 | Int(field[7]) << 8 | Int(field[8])
                guard size == 9 else { throw ReadError(description: "FLV header of \(size) bytes, expected 9") }
                state = .previousTagSize
            case .previousTagSize:
                state = .tagHeader
            case .tagHeader:
                let size = Int(field[1]) << 16 | Int(field[2]) << 8 | Int(field[3])
                let timestamp = UInt32(field[7]) << 24 | UInt32(field[4]) << 16 | UInt32(field[5]) << 8 | UInt32(field[6])
                let tag = Tag(kind: Tag.Kind(rawValue: field[0] & 0x1F), timestampMilliseconds: timestamp, dataBytes: size, isVideoFrame: false)
                if tag.kind == .video && size > 0 {
                    state = .videoPeek(tag)
                } else {
                    tags.append(tag)
                    state = size > 0 ? .skip(size) : .previousTagSize
                }
            case .videoPeek(var tag):
                tag.isVideoFrame = Self.isCodedFrame(field)
                tags.append(tag)
                let left = tag.dataBytes - field.count
                state = left > 0 ? .skip(left) : .previousTagSize
            case .skip:
                break
            }
        }
        return tags
    }

    /// From a video tag's first data bytes: frame type (high nibble) and codec (low nibble);
    /// for AVC (7) and HEVC (12) the next byte says sequence header (0), frame (1) or end (2).
    static func isCodedFrame(_ peek: [UInt8]) -> Bool {
        guard let first = peek.first else { return false }
        if first >> 4 == 5 { return false }   // video info/command frame
        let codec = first & 0x0F
        if codec == 7 || codec == 12 { return peek.count > 1 && peek[1] == 1 }
        return true
    }
}
