/// A live-stream viewer with a playback buffer, fed with the arrival time and media time of
/// each frame: it starts playing once `prerollSeconds` of media are buffered, then plays in
/// real time; when the next frame is due but has not arrived, playback stalls until it does
/// (and resumes from there). The buffer holds at most `capacityBytes`; a viewer whose buffer
/// is full stops reading, which the model records as an overflow.
///
/// This is what "the viewer saw no interruption" means in numbers: zero stalls.
public struct ViewerModel: Sendable {
    public struct Stall: Hashable, Sendable {
        /// Arrival-clock time at which the missing frame was due.
        public var atSeconds: Double
        public var seconds: Double
    }

    public let capacityBytes: Int
    public let prerollSeconds: Double

    /// Frames not yet played: (media seconds, bytes).
    private var buffered: [(media: Double, bytes: Int)] = []
    private var bufferedBytes = 0
    private var firstMedia: Double?
    private var lastMedia: Double?
    /// Arrival-clock time at which media time `firstMedia` plays (moves on with each stall).
    private var playbackOrigin: Double?
    public private(set) var stalls: [Stall] = []
    public private(set) var frames = 0
    public private(set) var peakBufferedBytes = 0
    /// Bytes that arrived while the buffer was full.
    public private(set) var overflowBytes = 0
    /// When playback began (arrival clock); nil while pre-rolling.
    public private(set) var startedAtSeconds: Double?

    public init(capacityBytes: Int, prerollSeconds: Double) {
        self.capacityBytes = capacityBytes
        self.prerollSeconds = prerollSeconds
    }

    /// A frame of `bytes` with media time `mediaSeconds` arrived at `arrivalSeconds`
    /// (non-decreasing).
    public mutating func arrived(mediaSeconds: Double, bytes: Int, at arrivalSeconds: Double) {
        frames += 1
        play(until: arrivalSeconds)
        if let origin = playbackOrigin, let first = firstMedia {
            let due = origin + (mediaSeconds - first)
            if due < arrivalSeconds {
                // Everything before this frame has been played; the viewer waited for it.
                stalls.append(Stall(atSeconds: due, seconds: arrivalSeconds - due))
                playbackOrigin = origin + (arrivalSeconds - due)
            }
        }
        if firstMedia == nil { firstMedia = mediaSeconds }
        lastMedia = max(lastMedia ?? mediaSeconds, mediaSeconds)
        if bufferedBytes + bytes > capacityBytes {
            overflowBytes += bytes
        } else {
            buffered.append((mediaSeconds, bytes))
            bufferedBytes += bytes
            peakBufferedBytes = max(peakBufferedBytes, bufferedBytes)
        }
        if playbackOrigin == nil, let first = firstMedia, mediaSeconds - first >= prerollSeconds {
            playbackOrigin = arrivalSeconds
            startedAtSeconds = arrivalSeconds
        }
    }

    /// Frames played by `time` leave the buffer.
    private mutating func play(until time: Double) {
        guard let origin = playbackOrigin, let first = firstMedia else { return }
        let played = buffered.prefix { origin + ($0.media - first) <= time }
        guard !played.isEmpty else { return }
        bufferedBytes -= played.reduce(0) { $0 + $1.bytes }
        buffered.removeFirst(played.count)
    }

    /// The stream was cut off at `time` (arrival clock) — it neither delivered nor ended, and
    /// the receiver stopped waiting: a viewer that was playing has been stalled since its
    /// buffer ran dry (the last frame's due time), and that stall never ended. A stream that
    /// ends normally is not cut off: its buffer plays out.
    public mutating func cutOff(at time: Double) {
        guard let origin = playbackOrigin, let first = firstMedia, let last = lastMedia else { return }
        let dry = origin + (last - first)
        if dry < time { stalls.append(Stall(atSeconds: dry, seconds: time - dry)) }
    }

    public var stalledSeconds: Double { stalls.reduce(0) { $0 + $1.seconds } }
}
