import Foundation
import ProcessSupport

/// A proxy the gateway benchmark measures: EdgePool in one of its modes, or a peer.
struct BenchProxy {
    enum Kind: String { case forward, socks, pair }

    /// For --only: edgepool, nio, epoll, socat, haproxy, dante, shadowsocks.
    let tool: String
    let name: String
    let kind: Kind
    /// Executables it needs.
    let executables: [String]
    /// EdgePool's pair over TLS 1.3 (certificates made for the run).
    var encrypted = false
    /// EdgePool's entry holding connections to the exit ahead of clients (`--preconnect 2`).
    var held = false

    var speaksSOCKS: Bool { kind != .forward }

    static let mptcpize = "/usr/bin/mptcpize"
    /// Forwarders of our own that show where the floor is (TCP→TCP only; not peers).
    static let baselines: Set<String> = ["nio", "epoll"]

    var missingTool: String? {
        let needed = tool == "edgepool" || Self.baselines.contains(tool) ? [] : executables + [Self.mptcpize]
        return needed.first { !FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// EdgePool's modes and the peers; in TCP→TCP also the baseline forwarders.
    static func all(for mode: BenchMode) -> [BenchProxy] {
        [
            BenchProxy(tool: "edgepool", name: "edgepool reverse", kind: .forward, executables: []),
            BenchProxy(tool: "nio", name: "minimal NIO forwarder", kind: .forward, executables: []),
            BenchProxy(tool: "epoll", name: "epoll+splice forwarder", kind: .forward, executables: []),
            BenchProxy(tool: "socat", name: "socat", kind: .forward, executables: ["/usr/bin/socat"]),
            BenchProxy(tool: "haproxy", name: "haproxy", kind: .forward, executables: ["/usr/sbin/haproxy"]),
            BenchProxy(tool: "edgepool", name: "edgepool socks", kind: .socks, executables: []),
            BenchProxy(tool: "dante", name: "dante", kind: .socks, executables: ["/usr/sbin/danted"]),
            BenchProxy(tool: "edgepool", name: "edgepool entry+exit", kind: .pair, executables: []),
            BenchProxy(tool: "edgepool", name: "edgepool entry+exit TLS", kind: .pair, executables: [], encrypted: true),
            BenchProxy(tool: "edgepool", name: "edgepool pair, held", kind: .pair, executables: [], held: true),
            BenchProxy(tool: "edgepool", name: "edgepool pair TLS, held", kind: .pair, executables: [], encrypted: true, held: true),
            BenchProxy(tool: "shadowsocks", name: "shadowsocks-libev", kind: .pair, executables: ["/usr/bin/ss-local", "/usr/bin/ss-server"]),
        ].filter { !baselines.contains($0.tool) || (!mode.clientMPTCP && !mode.serverMPTCP) }
    }

    /// A started proxy: the port clients connect to, and what to stop afterwards.
    struct Running {
        let port: Int
        let processes: [ChildProcess]
        let files: [String]

        func stop() {
            for process in processes {
                process.signal(SIGTERM)
                for _ in 0..<50 where process.isRunning { usleep(20_000) }
                if process.isRunning { process.signal(SIGKILL) }
            }
            for file in files { try? FileManager.default.removeItem(atPath: file) }
        }
    }

    /// Starts the proxy for `mode`; EdgePool's gateways get `gatewayFlags` on top.
    func start(mode: BenchMode, originPort: Int, gatewayFlags: [String] = []) throws -> Running {
        let anyMPTCP = mode.clientMPTCP || mode.serverMPTCP || kind == .pair
        /// A peer under mptcpize when MPTCP is wanted on any of its sockets.
        func peer(_ executable: String, _ arguments: [String]) throws -> ChildProcess {
            anyMPTCP ? try ChildProcess(name, ["run", executable] + arguments, executable: Self.mptcpize, standardError: .merged)
                     : try ChildProcess(name, arguments, executable: executable, standardError: .merged)
        }
        let upstream = mode.serverMPTCP ? "mptcp" : "tcp"
        let quiet = ["--telemetry-interval", "0", "--log-level", "error"] + gatewayFlags
        switch (tool, kind) {
        case ("edgepool", .forward):
            let child = try ChildProcess.subcommand(name, ["gateway", "reverse", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:\(originPort)",
                                            "--upstream-transport", upstream] + quiet)
            return Running(port: try Self.edgepoolPort(child), processes: [child], files: [])
        case ("edgepool", .socks):
            let child = try ChildProcess.subcommand(name, ["gateway", "socks", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1/32",
                                            "--upstream-transport", upstream] + quiet)
            return Running(port: try Self.edgepoolPort(child), processes: [child], files: [])
        case ("edgepool", .pair):
            let secret = "benchmark pair secret, 32 bytes"
            let certificates = encrypted ? try BenchCertificates() : nil
            func tls(_ name: String) -> [String] { certificates?.flags(name) ?? [] }
            let exit = try ChildProcess.subcommand("edgepool exit", ["gateway", "exit", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1/32",
                                                      "--secret", secret, "--upstream-transport", upstream] + tls("server") + quiet)
            let exitPort = try Self.edgepoolPort(exit)
            let entry = try ChildProcess.subcommand("edgepool entry", ["gateway", "entry", "--listen", "127.0.0.1:0", "--exit", "127.0.0.1:\(exitPort)",
                                                        "--secret", secret] + (held ? ["--preconnect", "2"] : []) + tls("client") + quiet)
            // The held connections' handshakes before the first client.
            if held { usleep(300_000) }
            return Running(port: try Self.edgepoolPort(entry), processes: [entry, exit], files: certificates.map { [$0.directory] } ?? [])
        case ("nio", _), ("epoll", _):
            // TCP only (baselines for EdgePool's own cost, not peers).
            let child = try ChildProcess.subcommand(name, ["bench", "gateway", "--serve-\(tool)-forwarder", "\(originPort)"])
            return Running(port: try Self.edgepoolPort(child), processes: [child], files: [])
        case ("socat", _):
            let port = try freeLoopbackPort()
            let child = try peer("/usr/bin/socat", ["TCP4-LISTEN:\(port),bind=127.0.0.1,fork,reuseaddr,nodelay", "TCP4:127.0.0.1:\(originPort),nodelay"])
            try BenchSocket.waitUntilListening(port)
            return Running(port: port, processes: [child], files: [])
        case ("haproxy", _):
            let port = try freeLoopbackPort()
            let config = NSTemporaryDirectory() + "edgepool-bench-haproxy-\(port).cfg"
            try """
            global
                maxconn 4000
            defaults
                mode tcp
                timeout connect 5s
                timeout client 60s
                timeout server 60s
            frontend bench
                bind 127.0.0.1:\(port)
                default_backend origin
            backend origin
                server origin 127.0.0.1:\(originPort)

            """.write(toFile: config, atomically: true, encoding: .utf8)
            let child = try peer("/usr/sbin/haproxy", ["-f", config, "-db"])
            try Self.waitUntilListening(port, child)
            return Running(port: port, processes: [child], files: [config])
        case ("dante", _):
            let port = try freeLoopbackPort()
            let config = NSTemporaryDirectory() + "edgepool-bench-danted-\(port).conf"
            try """
            logoutput: /dev/null
            internal: 127.0.0.1 port = \(port)
            external: 127.0.0.1
            clientmethod: none
            socksmethod: none
            user.privileged: root
            user.unprivileged: nobody
            client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
            socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }

            """.write(toFile: config, atomically: true, encoding: .utf8)
            let child = try peer("/usr/sbin/danted", ["-f", config])
            try Self.waitUntilListening(port, child)
            return Running(port: port, processes: [child], files: [config])
        case ("shadowsocks", _):
            let serverPort = try freeLoopbackPort()
            let localPort = try freeLoopbackPort()
            let common = ["-k", "benchmark-secret", "-m", "chacha20-ietf-poly1305", "--mptcp", "--fast-open"].filter { $0 != "--fast-open" }
            let server = try peer("/usr/bin/ss-server", ["-s", "127.0.0.1", "-p", "\(serverPort)"] + common)
            try BenchSocket.waitUntilListening(serverPort)
            let local = try peer("/usr/bin/ss-local", ["-s", "127.0.0.1", "-p", "\(serverPort)", "-b", "127.0.0.1", "-l", "\(localPort)"] + common)
            try BenchSocket.waitUntilListening(localPort)
            return Running(port: localPort, processes: [local, server], files: [])
        default:
            throw BenchSocket.Failure("no way to start \(name)")
        }
    }

    /// Waits for a peer's port; on failure the error carries what the peer said.
    static func waitUntilListening(_ port: Int, _ child: ChildProcess) throws {
        do {
            try BenchSocket.waitUntilListening(port)
        } catch {
            throw BenchSocket.Failure("\(error); \(child.name) said: \(child.lines.suffix(3).joined(separator: " | "))")
        }
    }

    /// The port from an EdgePool process's ready line (`listen=127.0.0.1:PORT`).
    static func edgepoolPort(_ child: ChildProcess) throws -> Int {
        guard let port = try child.waitForReadyBlocking().port("listen") else {
            throw BenchSocket.Failure("\(child.name)'s ready line names no listening address")
        }
        return port
    }
}
