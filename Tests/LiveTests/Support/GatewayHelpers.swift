import Foundation
import ProcessSupport
import Testing

/// The HTTP origin for gateway tests (Support/origin.py), on loopback or in a namespace.
struct Origin {
    let process: ChildProcess
    let port: Int
    var authority: String { "127.0.0.1:\(port)" }

    static let script = packageRoot.appendingPathComponent("Tests/LiveTests/Support/origin.py").path

    static func start(in namespace: TestNamespace? = nil, host: String = "127.0.0.1") async throws -> Origin {
        let process = if let namespace {
            try liveProcess("origin", ["netns", "exec", namespace.name, "/usr/bin/python3", script, host, "0"], executable: TestNamespace.ipTool!)
        } else {
            try liveProcess("origin", [script, host, "0"], executable: "/usr/bin/python3")
        }
        let line = try await process.waitForLine(containing: "origin listening on")
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else { throw LiveTestError("origin: no port in '\(line)'") }
        return Origin(process: process, port: port)
    }
}

/// A gateway process; its port comes from its first stdout line.
struct LiveGateway {
    let process: ChildProcess
    let port: Int
    let log: String

    /// `edgepool gateway MODE --listen HOST:0 --connection-log LOG ARGS…`
    static func start(_ mode: String, _ arguments: [String], in namespace: TestNamespace? = nil, host: String = "127.0.0.1") async throws -> LiveGateway {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("edgepool-gw-\(UUID().uuidString).jsonl").path
        let full = ["gateway", mode, "--listen", "\(host):0", "--connection-log", log, "--log-level", "debug"] + arguments
        let process = try namespace.map { try $0.edgepool("gateway-\(mode)", full) } ?? liveProcess("gateway-\(mode)", full)
        let ready = try await process.waitForReady()
        guard let port = ready.port("listen") else { throw LiveTestError("gateway: no listening address in '\(ready)'") }
        return LiveGateway(process: process, port: port, log: log)
    }

    /// The connection records written so far (the log is written off the event loop: poll).
    func records(atLeast count: Int = 1, timeout: Double = 10) async throws -> [[String: Any]] {
        var records: [[String: Any]] = []
        try await eventually(timeout: timeout, "\(count) connection record(s) in \(log)") {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            records = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return records.count >= count
        }
        return records
    }
}

/// Runs a command to its end: (exit status, output lines).
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60) async throws -> (status: Int32, output: [String]) {
    let process = try liveProcess(URL(fileURLWithPath: executable).lastPathComponent, arguments, executable: executable)
    let status = try await process.waitForExit(timeout: timeout)
    return (status, process.lines)
}

/// SHA-256 of a file (hex), via sha256sum.
func sha256(ofFile path: String) async throws -> String {
    let result = try await runCommand("/usr/bin/sha256sum", [path])
    guard result.status == 0, let first = result.output.first?.split(separator: " ").first else { throw LiveTestError("sha256sum \(path) failed") }
    return String(first)
}

/// What the origin says /bytes/N hashes to.
func originSHA(_ origin: Origin, _ size: Int) async throws -> String {
    let result = try await runCommand("/usr/bin/curl", ["-sS", "--noproxy", "*", "http://\(origin.authority)/sha/\(size)"])
    guard result.status == 0, let line = result.output.first else { throw LiveTestError("cannot ask the origin for /sha/\(size)") }
    return line
}

func temporaryFile(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("edgepool-\(name)-\(UUID().uuidString)").path
}

/// Why a tool the test needs is missing (nil: present).
func missingTool(_ path: String, package: String) -> String? {
    FileManager.default.isExecutableFile(atPath: path) ? nil : "\(path) missing (Debian package \(package); scripts/test installs it as root)"
}
