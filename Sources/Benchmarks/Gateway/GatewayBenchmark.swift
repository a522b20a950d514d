import CLinuxRelay
import Foundation
import ProcessSupport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif


/// `edgepool bench gateway`: throughput and added latency through the gateway against a
/// direct connection and against peer proxies run side by side, and memory per connection.
public struct GatewayBenchmark: Sendable {

    /// Seconds per download; throughput is the median of three.
    public var seconds: Double = 2.0

    /// Connections timed for the connect latency.
    public var connects: Int = 200

    /// Round trips timed on one connection.
    public var rounds: Int = 2000

    /// Connections for the memory measurement (0 skips it).
    public var connections: Int = 10_000

    /// Only these proxies (comma-separated: edgepool, nio, epoll, socat, haproxy, dante, shadowsocks).
    public var only: String?

    /// Only these modes (comma-separated: tcp-tcp, mptcp-tcp, tcp-mptcp, udp).
    public var modes: String?

    /// Run everything on CPU 0 (the benchmark, origin, peers, gateways): latency then measures each proxy's own work without cross-core wake-ups, which dominate and vary on a shared machine; throughput is single-core.
    public var oneCore: Bool = false

    /// Extra flags for every EdgePool gateway process, e.g. --gateway-flags='--read-size 65536 --threads 1'.
    public var gatewayFlags: String?

    /// Internal: run the memory measurement's origin in this process (file descriptors are
    /// limited per process; 10,000 connections need three processes' worth).
    public var serveStreamTarget: Bool = false

    /// Internal: run the minimal SwiftNIO forwarder (a baseline) to this origin port.
    public var serveNioForwarder: Int?

    /// Internal: run the epoll + splice forwarder (a baseline) to this origin port.
    public var serveEpollForwarder: Int?

    public init(seconds: Double = 2.0, connects: Int = 200, rounds: Int = 2000, connections: Int = 10_000, only: String? = nil, modes: String? = nil, oneCore: Bool = false, gatewayFlags: String? = nil, serveStreamTarget: Bool = false, serveNioForwarder: Int? = nil, serveEpollForwarder: Int? = nil) {
        self.seconds = seconds
        self.connects = connects
        self.rounds = rounds
        self.connections = connections
        self.only = only
        self.modes = modes
        self.oneCore = oneCore
        self.gatewayFlags = gatewayFlags
        self.serveStreamTarget = serveStreamTarget
        self.serveNioForwarder = serveNioForwarder
        self.serveEpollForwarder = serveEpollForwarder
    }

    public func run() throws {
        raiseFileLimit()
        if serveStreamTarget { try BenchStreamTarget.serveUntilKilled() }
        if let origin = serveNioForwarder { try BenchNIOForwarder.serveUntilKilled(origin: origin) }
        if let origin = serveEpollForwarder { try BenchEpollForwarder.serveUntilKilled(origin: origin) }
        if oneCore {
            guard c_linux_relay_pin_to_cpu(0) == 0 else { throw BenchmarkError("cannot pin to CPU 0: errno \(errno)") }
        }
        let tcpOrigin = try BenchOrigin(mptcp: false)
        let mptcpOrigin = try BenchOrigin(mptcp: true)
        let selected = only.map { Set($0.split(separator: ",").map(String.init)) }
        print("gateway benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores; each figure measured in this run; ratios against the direct connection")
        print("method: throughput = median of \(Self.turns) downloads of \(seconds) s; connect = median of \(connects) × (connect + handshake + 1-byte echo); rtt = median of \(rounds) × 64-byte echo")
        print("        all proxies of a mode run at once and are measured in turns (\(Self.turns) rounds, the order rotating)")
        print(oneCore ? "        everything on CPU 0 (--one-core): latency is each proxy's own work; throughput is single-core\n" : "")

        let modeNames = modes.map { $0.split(separator: ",").map(String.init) }
        let includeUDP = modeNames?.contains("udp") ?? true
        let selectedModes = try modes.map { list in
            try list.split(separator: ",").filter { $0 != "udp" }.map { name in
                guard let mode = BenchMode.allCases.first(where: { $0.flagName == name }) else {
                    throw BenchmarkError("unknown mode \(name); modes: " + BenchMode.allCases.map(\.flagName).joined(separator: ", ") + ", udp")
                }
                return mode
            }
        } ?? BenchMode.allCases
        let extraFlags = gatewayFlags.map { $0.split(separator: " ").map(String.init) } ?? []
        if !extraFlags.isEmpty { print("EdgePool gateways run with: \(extraFlags.joined(separator: " "))\n") }

        for mode in selectedModes {
            let origin = mode.serverMPTCP ? mptcpOrigin : tcpOrigin
            print("\(mode.title)")
            print("  proxy                    throughput        vs direct   connect +µs   rtt +µs")
            // Every proxy of the mode runs at once and the measurements take turns (round
            // after round, each round in another order), so that a slow spell of this
            // shared machine falls on all of them instead of on whichever ran then.
            var targets = [BenchTarget(name: "direct", proxy: nil, port: origin.port, socksTarget: nil)]
            var running: [BenchProxy.Running] = []
            defer { for proxy in running { proxy.stop() } }
            for proxy in BenchProxy.all(for: mode) where selected?.contains(proxy.tool) ?? true {
                if let missing = proxy.missingTool {
                    print("  \(proxy.name.padding(toLength: 24, withPad: " ", startingAt: 0)) missing: \(missing)")
                    continue
                }
                do {
                    let started = try proxy.start(mode: mode, originPort: origin.port, gatewayFlags: extraFlags)
                    running.append(started)
                    targets.append(BenchTarget(name: proxy.name, proxy: proxy, port: started.port, socksTarget: proxy.speaksSOCKS ? origin.port : nil))
                } catch {
                    print("  \(proxy.name.padding(toLength: 24, withPad: " ", startingAt: 0)) failed to start: \(error)")
                }
            }
            let measured = measureInTurns(targets, clientMPTCP: mode.clientMPTCP)
            guard let direct = measured.first?.1 else { continue }
            print("  " + row("direct", direct, direct: direct, absolute: true))
            var results: [(BenchProxy, Measurement)] = []
            for (target, measurement) in measured.dropFirst() {
                guard let proxy = target.proxy else { continue }
                guard let measurement else {
                    print("  \(target.name.padding(toLength: 24, withPad: " ", startingAt: 0)) failed: \(target.failure ?? "no result")")
                    continue
                }
                results.append((proxy, measurement))
                print("  " + row(target.name, measurement, direct: direct))
                let figure = "gateway \(mode.flagName) \(target.name)"
                BenchmarkFigures.record("\(figure): throughput / direct", measurement.bytesPerSecond / direct.bytesPerSecond, unit: "×",
                                        kind: proxy.tool == "edgepool" ? .ratio : .peer, better: .higher)
                BenchmarkFigures.record("\(figure): connect +µs", measurement.connectMicroseconds - direct.connectMicroseconds, unit: "µs", kind: .absolute, better: .lower)
                BenchmarkFigures.record("\(figure): rtt +µs", measurement.rttMicroseconds - direct.rttMicroseconds, unit: "µs", kind: .absolute, better: .lower)
            }
            summarise(results, mode: mode)
            measureConnectionRates(measured.filter { $0.1 != nil }.map(\.0), running: running, mode: mode)
            print("")
        }
        if includeUDP && (selected?.contains("edgepool") ?? true) { try measureUDP(gatewayFlags: extraFlags) }
        if connections > 0 { try measureMemory(origin: tcpOrigin, gatewayFlags: extraFlags) }
    }

    // MARK: throughput and latency

    struct Measurement {
        var bytesPerSecond: Double
        var connectMicroseconds: Double
        var rttMicroseconds: Double
        var throughputText: String { String(format: "%.2f Gbit/s", bytesPerSecond * 8 / 1e9) }
        var connectText: String { String(format: "%.0f µs", connectMicroseconds) }
        var rttText: String { String(format: "%.1f µs", rttMicroseconds) }
    }

    /// Measures every target in turns: `turns` rounds, each with one download per target and
    /// a share of the connects and round trips, the order rotating from round to round.
    /// A target that fails drops out with its error; the others go on.
    func measureInTurns(_ targets: [BenchTarget], clientMPTCP: Bool) -> [(BenchTarget, Measurement?)] {
        var samples = targets.map { _ in BenchSamples() }
        var failed = targets.map { _ -> String? in nil }
        var echoes = targets.map { _ -> Int32? in nil }
        defer { for fd in echoes.compactMap({ $0 }) { close(fd) } }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        let turns = Self.turns
        for turn in 0..<turns {
            for offset in 0..<targets.count {
                let index = (offset + turn) % targets.count
                guard failed[index] == nil else { continue }
                let target = targets[index]
                do {
                    samples[index].rates.append(try download(target, clientMPTCP: clientMPTCP, buffer: &buffer))
                    for _ in 0..<max(1, connects / turns) {
                        samples[index].connects.append(try timeConnect(target, clientMPTCP: clientMPTCP, buffer: &buffer))
                    }
                    if echoes[index] == nil {
                        let fd = try target.open(clientMPTCP: clientMPTCP)
                        echoes[index] = fd
                        try BenchSocket.send(fd, [UInt8(ascii: "E")])
                    }
                    let message = [UInt8](repeating: 7, count: 64)
                    for _ in 0..<max(1, rounds / turns) {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        try BenchSocket.send(echoes[index]!, message)
                        try BenchSocket.receive(echoes[index]!, exactly: 64, into: &buffer)
                        samples[index].rtts.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
                    }
                } catch {
                    failed[index] = "\(error)"
                }
            }
        }
        return targets.indices.map { index in
            var target = targets[index]
            target.failure = failed[index]
            guard failed[index] == nil else { return (target, nil) }
            return (target, Measurement(bytesPerSecond: median(samples[index].rates), connectMicroseconds: median(samples[index].connects),
                                        rttMicroseconds: median(samples[index].rtts)))
        }
    }

    /// Rounds of measurement per target (throughput is the median of this many downloads).
    static let turns = 3

    /// One download of --seconds: bytes per second.
    func download(_ target: BenchTarget, clientMPTCP: Bool, buffer: inout [UInt8]) throws -> Double {
        let stream = try target.open(clientMPTCP: clientMPTCP)
        defer { close(stream) }
        try BenchSocket.send(stream, [UInt8(ascii: "B")])
        var received = 0
        let start = Date()
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(stream, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while Date().timeIntervalSince(start) < seconds {
            let n = buffer.withUnsafeMutableBytes { recv(stream, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += n
        }
        return Double(received) / Date().timeIntervalSince(start)
    }

    /// Connect (+ SOCKS5 handshake) + a 1-byte echo: microseconds.
    func timeConnect(_ target: BenchTarget, clientMPTCP: Bool, buffer: inout [UInt8]) throws -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let fd = try target.open(clientMPTCP: clientMPTCP)
        defer { close(fd) }
        try BenchSocket.send(fd, [UInt8(ascii: "E"), 1])
        try BenchSocket.receive(fd, exactly: 1, into: &buffer)
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000
    }

    /// A table row: added latency against the direct connection, or (`absolute`, for the
    /// direct connection itself) the latencies in parentheses.
    func row(_ name: String, _ m: Measurement, direct: Measurement, absolute: Bool = false) -> String {
        name.padding(toLength: 24, withPad: " ", startingAt: 0)
            + m.throughputText.leftPadded(13)
            + String(format: "%11.0f %%", 100 * m.bytesPerSecond / direct.bytesPerSecond)
            + (absolute ? "(\(m.connectText))".leftPadded(14) + "(\(m.rttText))".leftPadded(10)
                        : String(format: "%14.0f%10.1f", m.connectMicroseconds - direct.connectMicroseconds, m.rttMicroseconds - direct.rttMicroseconds))
    }

    /// EdgePool against the best peer of the same family in this mode.
    func summarise(_ results: [(BenchProxy, Measurement)], mode: BenchMode) {
        for kind in [BenchProxy.Kind.forward, .socks, .pair] {
            let members = results.filter { $0.0.kind == kind }
            guard let ours = members.first(where: { $0.0.tool == "edgepool" && !$0.0.encrypted && !$0.0.held }),
                  let best = members.filter({ $0.0.tool != "edgepool" && !BenchProxy.baselines.contains($0.0.tool) }).max(by: { $0.1.bytesPerSecond < $1.1.bytesPerSecond }) else { continue }
            print(String(format: "  %@: edgepool throughput = %.2f × the best peer (%@)", kind.rawValue, ours.1.bytesPerSecond / best.1.bytesPerSecond, best.0.name))
            BenchmarkFigures.record("gateway \(mode.flagName) \(kind.rawValue): edgepool / \(best.0.name) throughput", ours.1.bytesPerSecond / best.1.bytesPerSecond,
                                    unit: "×", kind: .peer, better: .higher)
            // The encrypted pair against the plain one and against the best (encrypted) peer.
            if let encrypted = members.first(where: { $0.0.tool == "edgepool" && $0.0.encrypted && !$0.0.held }) {
                print(String(format: "  encrypted pair: throughput = %.2f × the plain pair, %.2f × %@; connect +%.0f µs over the plain pair (the TLS handshake)",
                             encrypted.1.bytesPerSecond / ours.1.bytesPerSecond, encrypted.1.bytesPerSecond / best.1.bytesPerSecond, best.0.name,
                             encrypted.1.connectMicroseconds - ours.1.connectMicroseconds))
                BenchmarkFigures.record("gateway \(mode.flagName) pair: TLS / plain throughput", encrypted.1.bytesPerSecond / ours.1.bytesPerSecond,
                                        unit: "×", kind: .ratio, better: .higher)
            }
            // Held connections to the exit (--preconnect 2): the connect against the plain pair's and the peer's.
            for held in members where held.0.tool == "edgepool" && held.0.held {
                let without = members.first { $0.0.tool == "edgepool" && $0.0.encrypted == held.0.encrypted && !$0.0.held }?.1 ?? ours.1
                print(String(format: "  %@: connect %+.0f µs against the pair without, %+.0f µs against %@",
                             held.0.name, held.1.connectMicroseconds - without.connectMicroseconds,
                             held.1.connectMicroseconds - best.1.connectMicroseconds, best.0.name))
                if !held.0.encrypted {
                    BenchmarkFigures.record("gateway \(mode.flagName) pair, held: connect / \(best.0.name) connect", held.1.connectMicroseconds / best.1.connectMicroseconds,
                                            unit: "×", kind: .peer, better: .lower)
                }
            }
        }
    }

    /// Connections per second and per core-second of each proxy, one after the other
    /// (``BenchConnectionRate``); EdgePool's against the best peer's of its kind.
    func measureConnectionRates(_ targets: [BenchTarget], running: [BenchProxy.Running], mode: BenchMode) {
        print("  connection rate (\(BenchConnectionRate.clients) clients × connect + handshake + 1-byte echo + close, 2 s each; CPU of the proxy's processes):")
        var rates: [(BenchProxy, BenchConnectionRate.Result)] = []
        for target in targets {
            guard let proxy = target.proxy, let processes = running.first(where: { $0.port == target.port })?.processes else { continue }
            do {
                let result = try BenchConnectionRate.measure(target, processes: processes.map(\.pid), clientMPTCP: mode.clientMPTCP, seconds: 2)
                rates.append((proxy, result))
                print(String(format: "    %@ %8.0f conn/s  %5.2f cores  %8.0f per core-second", target.name.padding(toLength: 24, withPad: " ", startingAt: 0),
                             result.connectionsPerSecond, result.cores, result.perCoreSecond))
                BenchmarkFigures.record("gateway \(mode.flagName) \(target.name): connections per core-second", result.perCoreSecond,
                                        unit: "conn/s", kind: .absolute, better: .higher)
            } catch {
                print("    \(target.name.padding(toLength: 24, withPad: " ", startingAt: 0)) failed: \(error)")
            }
        }
        for kind in [BenchProxy.Kind.forward, .socks, .pair] {
            let members = rates.filter { $0.0.kind == kind }
            guard let ours = members.first(where: { $0.0.tool == "edgepool" && !$0.0.encrypted && !$0.0.held }),
                  let best = members.filter({ $0.0.tool != "edgepool" && !BenchProxy.baselines.contains($0.0.tool) })
                      .max(by: { $0.1.perCoreSecond < $1.1.perCoreSecond }) else { continue }
            print(String(format: "    %@: edgepool %.2f × %@'s connections per core-second", kind.rawValue, ours.1.perCoreSecond / best.1.perCoreSecond, best.0.name))
            BenchmarkFigures.record("gateway \(mode.flagName) \(kind.rawValue): edgepool / \(best.0.name) connections per core-second",
                                    ours.1.perCoreSecond / best.1.perCoreSecond, unit: "×", kind: .peer, better: .higher)
        }
    }

    // MARK: UDP

    /// SOCKS5 UDP ASSOCIATE through `edgepool gateway socks` against the origin directly, in
    /// turns (three rounds each).
    func measureUDP(gatewayFlags: [String]) throws {
        let origin = try BenchUDP.EchoOrigin()
        guard let socks = BenchProxy.all(for: .tcpToTCP).first(where: { $0.tool == "edgepool" && $0.kind == .socks }) else { return }
        let running = try socks.start(mode: .tcpToTCP, originPort: origin.port, gatewayFlags: gatewayFlags)
        defer { running.stop() }
        var direct: [BenchUDP.Measurement] = []
        var relayed: [BenchUDP.Measurement] = []
        for turn in 0..<Self.turns {
            for path in turn % 2 == 0 ? [false, true] : [true, false] {
                let opened = path ? try BenchUDP.associated(gateway: running.port, origin: origin.port) : try BenchUDP.direct(to: origin.port)
                defer { opened.close() }
                let result = BenchUDP.measure(opened, rounds: max(1, rounds / Self.turns), seconds: seconds)
                if path { relayed.append(result) } else { direct.append(result) }
            }
        }
        func summary(_ results: [BenchUDP.Measurement]) -> BenchUDP.Measurement {
            BenchUDP.Measurement(rttMicroseconds: median(results.map(\.rttMicroseconds)), datagramsPerSecond: median(results.map(\.datagramsPerSecond)),
                                 payloadBytes: results.first?.payloadBytes ?? 0, lost: results.map(\.lost).reduce(0, +))
        }
        let d = summary(direct), r = summary(relayed)
        print("UDP — SOCKS5 UDP ASSOCIATE (rtt: median of \(rounds) × 64-byte echo; rate: 1,400-byte datagrams, 32 in flight, \(seconds) s × \(Self.turns))")
        print("  path                     rate                                    rtt")
        print("  " + "direct".padding(toLength: 24, withPad: " ", startingAt: 0) + d.rateText + String(format: "   %7.1f µs   lost %d", d.rttMicroseconds, d.lost))
        print("  " + "edgepool socks relay".padding(toLength: 24, withPad: " ", startingAt: 0) + r.rateText
              + String(format: "   %+7.1f µs   lost %d", r.rttMicroseconds - d.rttMicroseconds, r.lost))
        print(String(format: "  relay rate = %.2f × direct\n", r.datagramsPerSecond / d.datagramsPerSecond))
        BenchmarkFigures.record("gateway udp: SOCKS5 relay datagrams/s / direct", r.datagramsPerSecond / d.datagramsPerSecond, unit: "×", kind: .ratio, better: .higher)
    }

    // MARK: memory

    func measureMemory(origin: BenchOrigin, gatewayFlags: [String]) throws {
        let target = try ChildProcess.subcommand("stream target", ["bench", "gateway", "--serve-stream-target", "--connections", "\(connections)"])
        defer { target.signal(SIGKILL) }
        let targetPort = try BenchProxy.edgepoolPort(target)
        func accepted() -> Int {
            target.lines.last(where: { $0.hasPrefix("accepted ") }).flatMap { Int($0.dropFirst(9)) } ?? 0
        }
        let gateway = try ChildProcess.subcommand("gateway", ["gateway", "reverse", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:\(targetPort)",
                                                              "--max-connections", "\(connections * 2)", "--telemetry-interval", "0", "--log-level", "error"] + gatewayFlags)
        let port = try BenchProxy.edgepoolPort(gateway)
        usleep(300_000)
        let baseline = gateway.residentBytes() ?? 0
        let clients = try BenchStreamClients(port: port, count: connections, group: MultiThreadedEventLoopGroup.singleton)
        defer { clients.close() }
        let deadline = Date().addingTimeInterval(60)
        while accepted() < connections && Date() < deadline { usleep(50_000) }
        usleep(500_000)
        let idle = gateway.residentBytes() ?? 0
        let relayed = accepted()
        target.signal(SIGUSR1)   // start streaming
        var peak = idle
        let streamStart = Date()
        while Date().timeIntervalSince(streamStart) < seconds {
            usleep(200_000)
            peak = max(peak, gateway.residentBytes() ?? 0)
        }
        let streamed = clients.bytesReceived
        print("memory, edgepool gateway reverse (TCP→TCP), \(relayed) relayed connections (RSS of the gateway process):")
        print(String(format: "  idle:      %6.1f KiB per connection (RSS %.0f MiB over a %.0f MiB baseline)",
                     Double(idle - baseline) / Double(max(relayed, 1)) / 1024, Double(idle) / 1_048_576, Double(baseline) / 1_048_576))
        print(String(format: "  streaming: %6.1f KiB per connection (peak RSS %.0f MiB; %.2f Gbit/s across all for %.0f s)",
                     Double(peak - baseline) / Double(max(relayed, 1)) / 1024, Double(peak) / 1_048_576,
                     Double(streamed) * 8 / 1e9 / seconds, seconds))
        BenchmarkFigures.record("gateway memory: KiB per idle connection", Double(idle - baseline) / Double(max(relayed, 1)) / 1024,
                                unit: "KiB", kind: .absolute, better: .lower)
        BenchmarkFigures.record("gateway memory: KiB per streaming connection", Double(peak - baseline) / Double(max(relayed, 1)) / 1024,
                                unit: "KiB", kind: .absolute, better: .lower)
    }

    func raiseFileLimit() { BenchSocket.raiseFileLimit(connections: connections) }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// Which sides of the relay speak MPTCP.
/// Something the benchmark connects to: the origin itself (direct) or a proxy in front of it.
struct BenchTarget {
    var name: String
    var proxy: BenchProxy?
    var port: Int
    /// The origin port a SOCKS5 proxy is asked to connect to.
    var socksTarget: Int?
    var failure: String?

    func open(clientMPTCP: Bool) throws -> Int32 {
        let fd = try BenchSocket.connect(port: port, mptcp: clientMPTCP)
        if let socksTarget {
            do { try BenchSocket.socks5Connect(fd, targetPort: socksTarget) } catch { close(fd); throw error }
        }
        return fd
    }
}

/// The samples one target collects over the turns.
struct BenchSamples {
    var rates: [Double] = []
    var connects: [Double] = []
    var rtts: [Double] = []
}

enum BenchMode: CaseIterable {
    case tcpToTCP, mptcpToTCP, tcpToMPTCP
    var clientMPTCP: Bool { self == .mptcpToTCP }
    var serverMPTCP: Bool { self == .tcpToMPTCP }
    /// How --modes names it.
    var flagName: String {
        switch self {
        case .tcpToTCP: "tcp-tcp"
        case .mptcpToTCP: "mptcp-tcp"
        case .tcpToMPTCP: "tcp-mptcp"
        }
    }
    var title: String {
        switch self {
        case .tcpToTCP: "TCP → TCP"
        case .mptcpToTCP: "MPTCP → TCP"
        case .tcpToMPTCP: "TCP → MPTCP"
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
