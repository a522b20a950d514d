import Foundation
import ProcessSupport
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// A live video stream over RTMP: ffmpeg encodes a generated test pattern (H.264 + AAC in FLV)
/// in real time and serves it on a listening RTMP socket; the receiver plays it with ffmpeg
/// (stream copy to FLV on a pipe) and feeds every frame into a viewer model with a playback
/// buffer, which counts the interruptions a person watching would have seen.
extension TestbedTraffic {
    static let rtmpPath = "live/testbed"

    /// The program on the PATH, for a clear error when it is missing.
    static func program(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestbedError("video traffic needs \(name) (Debian: apt install \(name == "mptcpize" ? "mptcpize" : "ffmpeg"))")
    }

    /// ffmpeg, or ffmpeg under mptcpize (its sockets become MPTCP).
    static func ffmpeg(_ arguments: [String], mptcp: Bool) throws -> Process {
        let process = Process()
        let ffmpeg = try program("ffmpeg")
        if mptcp {
            process.executableURL = URL(fileURLWithPath: try program("mptcpize"))
            process.arguments = ["run", ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: ffmpeg)
            process.arguments = ["-hide_banner", "-loglevel", "error", "-nostdin"] + arguments
        }
        return process
    }

    public struct Stream {
        public var listening: Listener
        /// Seconds of video.
        public var seconds: Double = 10
        /// Total bit rate (video + 64 kbit/s audio), bits per second.
        public var bitrate: UInt64 = 2_000_000

        public init(listening: Listener, seconds: Double = 10, bitrate: UInt64 = 2_000_000) {
            self.listening = listening
            self.seconds = seconds
            self.bitrate = bitrate
        }

        public func run() throws {
            let (listen, port, mptcp) = (listening.listen, listening.port, listening.mptcp)
            let video = max(bitrate, 200_000) - 64_000
            let host = listen.contains(":") ? "[\(listen)]" : listen
            let process = try TestbedTraffic.ffmpeg([
                "-nostats", "-progress", "pipe:1", "-re",
                "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                "-t", String(seconds),
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50",
                "-b:v", "\(video)", "-maxrate", "\(video)", "-bufsize", "\(video / 2)",
                "-c:a", "aac", "-b:a", "64k",
                "-f", "flv", "-listen", "1", "rtmp://\(host):\(port)/\(TestbedTraffic.rtmpPath)",
            ], mptcp: mptcp)
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            ReadyLine(daemon: "traffic", ["port": "\(port)"]).announce()
            fflush(nil)
            // -progress writes key=value blocks; the last one holds the totals.
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            var values: [String: String] = [:]
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { values[String(parts[0])] = String(parts[1]).trimmingCharacters(in: .whitespaces) }
            }
            // speed: media seconds encoded per wall-clock second (below 1: the encoder lagged, and
            // the viewer's interruptions are not all the network's).
            let speed = values["speed"].flatMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: "x "))) } ?? 0
            print("sent frames \(values["frame"] ?? "0") bytes \(values["total_size"] ?? "0") speed \(speed) status \(process.terminationStatus)")
        }
    }

    public struct Watch {
        public var target: Target
        /// Playback buffer in bytes.
        public var buffer: Int = 64 << 20
        /// Seconds of media buffered before playback starts.
        public var preroll: Double = 2
        /// How long the viewer keeps trying to reach a server that is starting.
        static let connectAttemptsSeconds = 10.0
        /// How long ffmpeg gets to exit after SIGTERM before SIGKILL.
        static let stopSeconds = 3.0

        public init(target: Target, buffer: Int = 64 << 20, preroll: Double = 2) {
            self.target = target
            self.buffer = buffer
            self.preroll = preroll
        }

        static func stop(_ process: Process) {
            let deadline = Date().addingTimeInterval(stopSeconds)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        public func run() throws {
            let (seconds, mptcp) = (target.seconds, target.mptcp)
            let (host, port) = try TestbedTraffic.splitHostPort(target.connect)
            let url = "rtmp://\(host.contains(":") ? "[\(host)]" : host):\(port)/\(TestbedTraffic.rtmpPath)"
            let start = Date()
            let origin = target.origin(started: start)
            var reader = FLVTagReader()
            var viewer = ViewerModel(capacityBytes: buffer, prerollSeconds: preroll)
            var videoFrames = 0
            var received: UInt64 = 0
            var failure: String?
            TestbedTraffic.reportProgress(start.timeIntervalSince(origin), 0)
            attempts: while true {
                let process = try TestbedTraffic.ffmpeg(["-analyzeduration", "500000", "-probesize", "32768",
                                                         "-i", url, "-c", "copy", "-flush_packets", "1", "-f", "flv", "pipe:1"], mptcp: mptcp)
                // ffmpeg's complaints go to a file: a pipe nobody reads while the stream runs
                // would fill up and stop ffmpeg.
                let errorLog = NSTemporaryDirectory() + "edgepool-watch-\(getpid()).log"
                _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
                defer { try? FileManager.default.removeItem(atPath: errorLog) }
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = FileHandle(forWritingAtPath: errorLog)
                try process.run()
                let fd = pipe.fileHandleForReading.fileDescriptor
                var chunk = [UInt8](repeating: 0, count: 65_536)
                var nextReport = 0.0
                while true {
                    var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    _ = Glibc.poll(&poll, 1, 50)
                    let now = Date()
                    if poll.revents != 0 {
                        let n = read(fd, &chunk, chunk.count)
                        if n <= 0 { break }
                        received += UInt64(n)
                        do {
                            for tag in try reader.feed(chunk[0..<n]) where tag.kind == .audio || tag.isVideoFrame {
                                if tag.isVideoFrame { videoFrames += 1 }
                                viewer.arrived(mediaSeconds: Double(tag.timestampMilliseconds) / 1000, bytes: tag.dataBytes,
                                               at: now.timeIntervalSince(origin))
                            }
                        } catch {
                            failure = "\(error)"
                            process.terminate()
                            break
                        }
                    }
                    if now.timeIntervalSince(start) > seconds + Fetch.grace {
                        failure = "stopped: the stream did not end \(Fetch.grace) s after the run"
                        process.terminate()
                        break
                    }
                    if now.timeIntervalSince(start) >= nextReport {
                        TestbedTraffic.reportProgress(now.timeIntervalSince(origin), received)
                        nextReport = now.timeIntervalSince(start) + 0.05
                    }
                }
                Self.stop(process)
                let message = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
                if received == 0, failure == nil, Date().timeIntervalSince(start) < Self.connectAttemptsSeconds {
                    usleep(200_000)   // the server was not listening yet
                    continue attempts
                }
                if received == 0, failure == nil { failure = "no stream: \(message.split(separator: "\n").last ?? "ffmpeg ended")" }
                break
            }
            TestbedTraffic.reportProgress(Date().timeIntervalSince(origin), received)
            // A stream that stopped delivering and never ended left its viewer waiting: that
            // is an interruption until the receiver gave up, not "no interruption".
            if let failure, failure.hasPrefix("stopped:") { viewer.cutOff(at: Date().timeIntervalSince(origin)) }
            if let failure { print(failure.hasPrefix("stopped:") ? failure : "error: \(failure)") }
            for stall in viewer.stalls { print(String(format: "stall %.3f %.3f", stall.atSeconds, stall.seconds)) }
            print(String(format: "viewer frames %d video-frames %d stalls %d stalled %.3f peak-buffer %d overflow %d started %.3f received %llu",
                         viewer.frames, videoFrames, viewer.stalls.count, viewer.stalledSeconds, viewer.peakBufferedBytes, viewer.overflowBytes,
                         viewer.startedAtSeconds ?? -1, received))
        }
    }
}
