import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// `edgepool bench gateway`: throughput and added latency through the gateway against a
/// direct connection and against peer proxies run side by side, and memory per connection.
struct GatewayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Benchmark the gateway against a direct connection and peer proxies (socat, HAProxy, dante, shadowsocks-libev).",
        discussion: """
        Everything runs on loopback in this run, on this machine: an origin (one
        thread per connection: bulk stream or echo), the proxies as processes, and
        blocking clients. For each mode (TCP→TCP, MPTCP→TCP, TCP→MPTCP) and proxy it
        measures
          throughput   median of three downloads of --seconds each
          connect      connect (+ SOCKS5 handshake) + 1-byte echo, median of --connects
          round trip   64-byte echo on an open connection, median of --rounds
        and reports them beside the direct connection's (ratio, and latency added in
        µs). MPTCP for the peers comes from `mptcpize run` (shadowsocks also gets
        --mptcp). Peers that are not installed are listed as missing (Debian: socat
        haproxy dante-server shadowsocks-libev mptcpize).

        Memory (--connections, default 10000): RSS of `edgepool gateway reverse`
        with that many idle relayed connections, then with all of them streaming,
        per connection.
        """
    )

    @Option(help: "Seconds per download; throughput is the median of three.")
    var seconds = 2.0

    @Option(help: "Connections timed for the connect latency.")
    var connects = 200

    @Option(help: "Round trips timed on one connection.")
    var rounds = 2000

    @Option(help: "Connections for the memory measurement (0 skips it).")
    var connections = 10_000

    @Option(help: "Only these proxies (comma-separated: edgepool, nio, epoll, socat, haproxy, dante, shadowsocks).")
    var only: String?

    /// Internal: run the memory measurement's origin in this process (file descriptors are
    /// limited per process; 10,000 connections need three processes' worth).
    @Flag(help: .hidden)
    var serveStreamTarget = false

    /// Internal: run the minimal SwiftNIO forwarder (a baseline) to this origin port.
    @Option(help: .hidden)
    var serveNioForwarder: Int?

    /// Internal: run the epoll + splice forwarder (a baseline) to this origin port.
    @Option(help: .hidden)
    var serveEpollForwarder: Int?

    func run() throws {
        raiseFileLimit()
        if serveStreamTarget { try BenchStreamTarget.serveUntilKilled() }
        if let origin = serveNioForwarder { try BenchNIOForwarder.serveUntilKilled(origin: origin) }
        if let origin = serveEpollForwarder { try BenchEpollForwarder.serveUntilKilled(origin: origin) }
        let tcpOrigin = try BenchOrigin(mptcp: false)
        let mptcpOrigin = try BenchOrigin(mptcp: true)
        let selected = only.map { Set($0.split(separator: ",").map(String.init)) }
        print("gateway benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores; each figure measured in this run; ratios against the direct connection")
        print("method: throughput = median of 3 downloads of \(seconds) s; connect = median of \(connects) × (connect + handshake + 1-byte echo); rtt = median of \(rounds) × 64-byte echo\n")

        for mode in BenchMode.allCases {
            let origin = mode.serverMPTCP ? mptcpOrigin : tcpOrigin
            let direct = try measure(port: origin.port, socksTarget: nil, clientMPTCP: mode.clientMPTCP)
            print("\(mode.title) — direct: \(direct.throughputText), connect \(direct.connectText), rtt \(direct.rttText)")
            print("  proxy                    throughput        vs direct   connect +µs   rtt +µs")
            var results: [(BenchProxy, Measurement)] = []
            for proxy in BenchProxy.all(for: mode) where selected?.contains(proxy.tool) ?? true {
                if let missing = proxy.missingTool {
                    print("  \(proxy.name.padding(toLength: 24, withPad: " ", startingAt: 0)) missing: \(missing)")
                    continue
                }
                do {
                    let running = try proxy.start(mode: mode, originPort: origin.port)
                    defer { running.stop() }
                    let result = try measure(port: running.port, socksTarget: proxy.speaksSOCKS ? origin.port : nil, clientMPTCP: mode.clientMPTCP)
                    results.append((proxy, result))
                    print("  " + row(proxy.name, result, direct: direct))
                } catch {
                    print("  \(proxy.name.padding(toLength: 24, withPad: " ", startingAt: 0)) failed: \(error)")
                }
            }
            summarise(results)
            print("")
        }
        if connections > 0 { try measureMemory(origin: tcpOrigin) }
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

    func measure(port: Int, socksTarget: Int?, clientMPTCP: Bool) throws -> Measurement {
        func open() throws -> Int32 {
            let fd = try BenchSocket.connect(port: port, mptcp: clientMPTCP)
            if let socksTarget {
                do { try BenchSocket.socks5Connect(fd, targetPort: socksTarget) } catch { close(fd); throw error }
            }
            return fd
        }
        // Throughput: the median of three downloads of --seconds each (single runs vary by
        // more than the differences between proxies on this kind of machine).
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var rates: [Double] = []
        for _ in 0..<3 {
            let stream = try open()
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
            rates.append(Double(received) / Date().timeIntervalSince(start))
            close(stream)
        }
        let throughput = median(rates)

        // Connect + first byte.
        var connectTimes: [Double] = []
        for _ in 0..<connects {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let fd = try open()
            try BenchSocket.send(fd, [UInt8(ascii: "E"), 1])
            try BenchSocket.receive(fd, exactly: 1, into: &buffer)
            connectTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
            close(fd)
        }
        // Request/response on an open connection.
        let echo = try open()
        defer { close(echo) }
        try BenchSocket.send(echo, [UInt8(ascii: "E")])
        let message = [UInt8](repeating: 7, count: 64)
        var rtts: [Double] = []
        for _ in 0..<rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try BenchSocket.send(echo, message)
            try BenchSocket.receive(echo, exactly: 64, into: &buffer)
            rtts.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
        }
        return Measurement(bytesPerSecond: throughput, connectMicroseconds: median(connectTimes), rttMicroseconds: median(rtts))
    }

    func row(_ name: String, _ m: Measurement, direct: Measurement) -> String {
        name.padding(toLength: 24, withPad: " ", startingAt: 0)
            + m.throughputText.leftPadded(13)
            + String(format: "%11.0f %%", 100 * m.bytesPerSecond / direct.bytesPerSecond)
            + String(format: "%14.0f", m.connectMicroseconds - direct.connectMicroseconds)
            + String(format: "%10.1f", m.rttMicroseconds - direct.rttMicroseconds)
    }

    /// EdgePool against the best peer of the same family in this mode.
    func summarise(_ results: [(BenchProxy, Measurement)]) {
        for kind in [BenchProxy.Kind.forward, .socks, .pair] {
            let members = results.filter { $0.0.kind == kind }
            guard let ours = members.first(where: { $0.0.tool == "edgepool" }),
                  let best = members.filter({ $0.0.tool != "edgepool" && !BenchProxy.baselines.contains($0.0.tool) }).max(by: { $0.1.bytesPerSecond < $1.1.bytesPerSecond }) else { continue }
            print(String(format: "  %@: edgepool throughput = %.2f × the best peer (%@)", kind.rawValue, ours.1.bytesPerSecond / best.1.bytesPerSecond, best.0.name))
        }
    }

    // MARK: memory

    func measureMemory(origin: BenchOrigin) throws {
        let target = try ChildProcess("stream target", ["bench", "gateway", "--serve-stream-target", "--connections", "\(connections)"])
        defer { target.signal(SIGKILL) }
        let targetPort = try BenchProxy.edgepoolPort(target)
        func accepted() -> Int {
            target.lines.last(where: { $0.hasPrefix("accepted ") }).flatMap { Int($0.dropFirst(9)) } ?? 0
        }
        let gateway = try ChildProcess("gateway", ["gateway", "reverse", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:\(targetPort)",
                                                   "--max-connections", "\(connections * 2)", "--telemetry-interval", "0", "--log-level", "error"])
        let port = try BenchProxy.edgepoolPort(gateway)
        usleep(300_000)
        let baseline = gateway.residentBytes()
        let clients = try BenchStreamClients(port: port, count: connections, group: MultiThreadedEventLoopGroup.singleton)
        defer { clients.close() }
        let deadline = Date().addingTimeInterval(60)
        while accepted() < connections && Date() < deadline { usleep(50_000) }
        usleep(500_000)
        let idle = gateway.residentBytes()
        let relayed = accepted()
        target.signal(SIGUSR1)   // start streaming
        var peak = idle
        let streamStart = Date()
        while Date().timeIntervalSince(streamStart) < seconds {
            usleep(200_000)
            peak = max(peak, gateway.residentBytes())
        }
        let streamed = clients.bytesReceived
        print("memory, edgepool gateway reverse (TCP→TCP), \(relayed) relayed connections (RSS of the gateway process):")
        print(String(format: "  idle:      %6.1f KiB per connection (RSS %.0f MiB over a %.0f MiB baseline)",
                     Double(idle - baseline) / Double(max(relayed, 1)) / 1024, Double(idle) / 1_048_576, Double(baseline) / 1_048_576))
        print(String(format: "  streaming: %6.1f KiB per connection (peak RSS %.0f MiB; %.2f Gbit/s across all for %.0f s)",
                     Double(peak - baseline) / Double(max(relayed, 1)) / 1024, Double(peak) / 1_048_576,
                     Double(streamed) * 8 / 1e9 / seconds, seconds))
    }

    /// 10,000 relayed connections need about 20,000 descriptors in the gateway and as many
    /// here; root may raise the hard limit (up to fs.nr_open), others get the hard limit.
    func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let wanted = rlim_t(max(4 * connections + 1024, 65_536))
        let ceiling = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8))
            .flatMap { rlim_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? limit.rlim_max
        var raised = rlimit(rlim_cur: min(wanted, ceiling), rlim_max: max(limit.rlim_max, min(wanted, ceiling)))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// Which sides of the relay speak MPTCP.
enum BenchMode: CaseIterable {
    case tcpToTCP, mptcpToTCP, tcpToMPTCP
    var clientMPTCP: Bool { self == .mptcpToTCP }
    var serverMPTCP: Bool { self == .tcpToMPTCP }
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
