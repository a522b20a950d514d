import Testbed
import Testing

/// FLV bytes as ffmpeg's muxer writes them: header, PreviousTagSize0, tags each followed by
/// its PreviousTagSize.
enum FLV {
    static func header() -> [UInt8] { [0x46, 0x4C, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0] }

    static func tag(type: UInt8, milliseconds: UInt32, data: [UInt8]) -> [UInt8] {
        let size = data.count
        var bytes: [UInt8] = [type, UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF),
                              UInt8(milliseconds >> 16 & 0xFF), UInt8(milliseconds >> 8 & 0xFF), UInt8(milliseconds & 0xFF), UInt8(milliseconds >> 24),
                              0, 0, 0]
        bytes += data
        let total = UInt32(11 + size)
        bytes += [UInt8(total >> 24), UInt8(total >> 16 & 0xFF), UInt8(total >> 8 & 0xFF), UInt8(total & 0xFF)]
        return bytes
    }

    /// An AVC sequence header, then `frames` AVC frames 40 ms apart with an AAC tag each.
    static func stream(frames: Int, frameBytes: Int = 300) -> [UInt8] {
        var bytes = header() + tag(type: 18, milliseconds: 0, data: Array(repeating: 2, count: 30))
        bytes += tag(type: 9, milliseconds: 0, data: [0x17, 0] + Array(repeating: 0, count: 20))
        for index in 0..<frames {
            let key: UInt8 = index % 50 == 0 ? 0x17 : 0x27
            bytes += tag(type: 9, milliseconds: UInt32(index * 40), data: [key, 1] + Array(repeating: 7, count: frameBytes))
            bytes += tag(type: 8, milliseconds: UInt32(index * 40 + 5), data: [0xAF, 1] + Array(repeating: 9, count: 50))
        }
        return bytes
    }
}

@Suite struct FLVTagReaderTests {
    @Test func tagsComeOutWhateverTheChunking() throws {
        let bytes = FLV.stream(frames: 60)
        for chunk in [1, 7, 13, 4096, bytes.count] {
            var reader = FLVTagReader()
            var tags: [FLVTagReader.Tag] = []
            var index = 0
            while index < bytes.count {
                tags += try reader.feed(bytes[index..<min(index + chunk, bytes.count)])
                index += chunk
            }
            #expect(tags.count == 1 + 1 + 120, "chunk \(chunk)")
            #expect(tags.filter(\.isVideoFrame).count == 60, "the sequence header is not a frame (chunk \(chunk))")
            #expect(tags.filter { $0.kind == .audio }.count == 60)
            #expect(tags.last.map { Int($0.timestampMilliseconds) } == 59 * 40 + 5)
            #expect(reader.bytes == UInt64(bytes.count))
        }
    }

    @Test func extendedTimestampsAndEmptyTags() throws {
        var reader = FLVTagReader()
        let tags = try reader.feed(FLV.header() + FLV.tag(type: 9, milliseconds: 0x0100_0010, data: [0x27, 1, 0])
                                   + FLV.tag(type: 9, milliseconds: 5, data: []) + FLV.tag(type: 31, milliseconds: 6, data: [1]))
        #expect(tags.map(\.timestampMilliseconds) == [0x0100_0010, 5, 6])
        #expect(tags.map(\.isVideoFrame) == [true, false, false])
        #expect(tags[2].kind == nil)
    }

    @Test func notFLVIsRefused() {
        var reader = FLVTagReader()
        #expect(throws: FLVTagReader.ReadError.self) { try reader.feed(Array("HTTP/1.1 200 OK\r\n".utf8)) }
        var other = FLVTagReader()
        #expect(throws: FLVTagReader.ReadError.self) { try other.feed([0x46, 0x4C, 0x56, 1, 5, 0, 0, 0, 200]) }
    }
}

@Suite struct ViewerModelTests {
    /// Frames every 40 ms of media, arriving at `arrival(media)`.
    static func play(frames: Int, preroll: Double = 2, capacity: Int = 64 << 20, arrival: (Double) -> Double) -> ViewerModel {
        var viewer = ViewerModel(capacityBytes: capacity, prerollSeconds: preroll)
        for index in 0..<frames {
            let media = Double(index) * 0.04
            viewer.arrived(mediaSeconds: media, bytes: 10_000, at: arrival(media))
        }
        return viewer
    }

    @Test func aStreamCutOffIsAnInterruptionUntilTheReceiverGaveUp() {
        // 25 s of media arriving in real time, then nothing; the receiver gives up at 110 s.
        var cut = Self.play(frames: 625) { $0 + 0.1 }
        #expect(cut.stalls.isEmpty, "nothing was late before the cut")
        cut.cutOff(at: 110)
        #expect(cut.stalls.count == 1 && abs(cut.stalls[0].atSeconds - 27.06) < 0.001 && abs(cut.stalledSeconds - 82.94) < 0.001,
                "stalled from the last frame's due time (2.1 s start + 24.96 s of media) to the end: \(cut.stalls)")
        // One that never started playing (still pre-rolling) has nothing to interrupt.
        var early = Self.play(frames: 10) { $0 + 0.1 }
        early.cutOff(at: 110)
        #expect(early.stalls.isEmpty)
    }

    @Test func realTimeArrivalNeverStalls() {
        let viewer = Self.play(frames: 500) { $0 + 0.1 }
        #expect(viewer.stalls.isEmpty)
        #expect(viewer.startedAtSeconds == 2.1)
        #expect(viewer.frames == 500)
        // About the pre-roll's worth of frames is buffered at the peak.
        #expect(viewer.peakBufferedBytes >= 50 * 10_000 && viewer.peakBufferedBytes <= 52 * 10_000)
    }

    @Test func aGapShorterThanThePrerollIsAbsorbed() {
        // Nothing arrives for 1.5 s at media 6 s, then the backlog arrives at once.
        let viewer = Self.play(frames: 500) { media in media < 6 ? media : max(media, 7.5) }
        #expect(viewer.stalls.isEmpty)
    }

    @Test func aGapLongerThanThePrerollInterruptsOnce() throws {
        // A 3 s gap against 2 s of pre-roll: one stall of about 1 s.
        let viewer = Self.play(frames: 500) { media in media < 6 ? media : max(media, 9) }
        let stall = try #require(viewer.stalls.first)
        #expect(viewer.stalls.count == 1)
        #expect(abs(stall.seconds - 1.0) < 0.05)
        #expect(abs(viewer.stalledSeconds - stall.seconds) < 1e-9)
    }

    @Test func aFullBufferOverflows() {
        // Everything arrives at once: 500 frames of 10 kB into a 1 MB buffer. Playback starts
        // at time 0 (the pre-roll is there at once) and plays the first frame, making room
        // for one more: 101 frames are kept, 399 overflow.
        let viewer = Self.play(frames: 500, capacity: 1_000_000) { _ in 0 }
        #expect(viewer.peakBufferedBytes == 1_000_000)
        #expect(viewer.overflowBytes == 399 * 10_000)
    }
}

@Suite struct SampleStatisticsTests {
    @Test func figures() {
        let statistics = SampleStatistics([4, 1, 3, 2, 5])
        #expect(statistics.mean == 3)
        #expect(statistics.median == 3)
        #expect(statistics.minimum == 1 && statistics.maximum == 5)
        #expect(abs(statistics.standardDeviation - 1.5811) < 1e-4)
        #expect(statistics.quantile(0.9) == 4.6)
        #expect(SampleStatistics([7]).standardDeviation == 0)
        #expect(SampleStatistics([]).mean.isNaN)
    }
}
