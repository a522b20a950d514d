import ArgumentParser
import TestbedRunner

/// `edgepool testbed traffic …`: the traffic generators `testbed run` starts on the hosts of
/// a scenario (runtimes in TestbedRunner's `TestbedTraffic`), one sender and one receiver
/// per kind. Receivers report what they saw as lines on stdout.
struct TestbedTrafficCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traffic", abstract: "Traffic with checking: bulk, request/response, live video (used by `testbed run`).",
        subcommands: [Serve.self, Fetch.self, Respond.self, Request.self, Stream.self, Watch.self])

    /// Where a receiver connects, for how long, and on whose clock it reports.
    struct ConnectOptions: ParsableArguments {
        @Option(help: "The sender's address:port ([v6]:port).") var connect: String
        @Option(help: "Seconds of traffic (the receiver gives up 30 s after that).") var seconds: Double = 10
        @Option(help: "Report times since this Unix time (the runner's start) instead of since this process's start.") var epoch: Double?
        @Flag(help: "Connect with MPTCP.") var mptcp = false

        var target: TestbedTraffic.Target { .init(connect: connect, seconds: seconds, epoch: epoch, mptcp: mptcp) }
    }

    /// Where a sender listens.
    struct ListenOptions: ParsableArguments {
        @Option(help: "TCP port.") var port: Int = 5201
        @Option(help: "Listen on every address of this family: 0.0.0.0 or ::.") var listen = "0.0.0.0"
        @Flag(help: "Listen with MPTCP (plain TCP clients are accepted too).") var mptcp = false

        var listener: TestbedTraffic.Listener { .init(port: port, listen: listen, mptcp: mptcp) }
    }

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Accept one receiver and stream the pattern for as long as it asks.")
        @OptionGroup var listening: ListenOptions
        func run() throws { try asValidation { try TestbedTraffic.Serve(listening: listening.listener).run() } }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fetch", abstract: "Receive the pattern for --seconds, check every byte, report progress.")
        @OptionGroup var target: ConnectOptions
        @Option(help: "Progress line interval in seconds.") var every: Double = 0.1
        func run() throws { try asValidation { try TestbedTraffic.Fetch(target: target.target, every: every).run() } }
    }

    struct Respond: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "respond", abstract: "Accept one client and answer its requests until it closes.")
        @OptionGroup var listening: ListenOptions
        func run() throws { try asValidation { try TestbedTraffic.Respond(listening: listening.listener).run() } }
    }

    struct Request: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "request", abstract: "Send a request every --every seconds for --seconds; check each response; print latencies.")
        @OptionGroup var target: ConnectOptions
        @Option(help: "Response size in bytes.") var size: Int = 1000
        @Option(help: "Seconds between requests (a late response delays the next request).") var every: Double = 0.1
        func run() throws { try asValidation { try TestbedTraffic.Request(target: target.target, size: size, every: every).run() } }
    }

    struct Stream: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stream", abstract: "Encode a test pattern live and serve it over RTMP to one viewer.")
        @OptionGroup var listening: ListenOptions
        @Option(help: "Seconds of video.") var seconds: Double = 10
        @Option(help: "Total bit rate (video + 64 kbit/s audio), bits per second.") var bitrate: UInt64 = 2_000_000
        func run() throws { try asValidation { try TestbedTraffic.Stream(listening: listening.listener, seconds: seconds, bitrate: bitrate).run() } }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch", abstract: "Play an RTMP stream into a viewer model; report frames, stalls and the buffer.",
            discussion: HelpText.reflow("ffmpeg connects (retried while the server is not yet listening) and copies the stream to FLV on a pipe; every audio and video frame goes into the viewer model."))
        @OptionGroup var target: ConnectOptions
        @Option(help: "Playback buffer in bytes.") var buffer: Int = 64 << 20
        @Option(help: "Seconds of media buffered before playback starts.") var preroll: Double = 2
        func run() throws { try asValidation { try TestbedTraffic.Watch(target: target.target, buffer: buffer, preroll: preroll).run() } }
    }
}

/// `edgepool testbed emulate`: the userspace link emulator (TestbedRunner's `LinkEmulator`).
struct TestbedEmulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulate",
        abstract: "Userspace link emulator between two interfaces (delay, jitter, loss); started by `testbed up`.",
        shouldDisplay: false)

    @Option(help: "Interface toward side A.") var a: String
    @Option(help: "Interface toward side B.") var b: String
    @Option(help: "Delay A→B/B→A, e.g. 20ms/20ms.") var delay = "0ms/0ms"
    @Option(help: "Jitter A→B/B→A.") var jitter = "0ms/0ms"
    @Option(help: "Loss A→B/B→A in percent, e.g. 1%/0%.") var loss = "0%/0%"
    @Option(help: "Seed of the loss and jitter processes.") var seed: UInt64 = 0x5EED

    func run() throws {
        try asValidation { try LinkEmulator(a: a, b: b, delay: delay, jitter: jitter, loss: loss, seed: seed).run() }
    }
}
