import Foundation
import ProcessSupport
import Testing

/// The package root, found from this file's path.
let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("no Package.swift above \(#filePath)")
}()

/// The `edgepool` binary under test (EDGEPOOL_BINARY overrides; `swift build` makes it).
let edgepoolBinary: String = ProcessInfo.processInfo.environment["EDGEPOOL_BINARY"]
    ?? packageRoot.appendingPathComponent(".build/debug/edgepool").path

/// `edgepool ARGUMENTS` (or another executable) as a child process whose output the test
/// reads line by line, standard error included. It is killed with everything it started when
/// the test ends, whatever happens, so no daemon outlives a failing test.
func liveProcess(_ name: String, _ arguments: [String], executable: String = edgepoolBinary) throws -> ChildProcess {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
        throw LiveTestError("\(executable) is missing: run `swift build` first (scripts/test does)")
    }
    return try ChildProcess(name, arguments, executable: executable, standardError: .merged)
}

struct LiveTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `edgepool ARGS` to the end and returns (status, output).
func runEdgepool(_ arguments: [String], timeout: Double = 30) async throws -> (status: Int32, output: [String]) {
    let process = try liveProcess(arguments.first ?? "edgepool", arguments)
    let status = try await process.waitForExit(timeout: timeout)
    return (status, process.lines)
}

/// A registrar process on loopback; its ports are read from its ready line.
struct LiveRegistrar {
    let process: ChildProcess
    let ready: ReadyLine
    let port: Int
    var endpoint: String { "127.0.0.1:\(port)" }

    static func start(port: Int = 0, extra: [String] = []) async throws -> LiveRegistrar {
        let process = try liveProcess("registrar", ["registrar", "--listen", "127.0.0.1:\(port)", "--log-level", "info"] + extra)
        let ready = try await process.waitForReady()
        guard let port = ready.port("asap") else { throw LiveTestError("no ASAP address in the ready line: \(ready)") }
        return LiveRegistrar(process: process, ready: ready, port: port)
    }
}

/// Starts a PE process and waits until it has registered; returns its identifier.
func startPoolElement(registrar: String, pool: String, extra: [String] = []) async throws -> (process: ChildProcess, identifier: String) {
    let process = try liveProcess("pe", ["pe", "--registrar", registrar, "--pool", pool, "--log-level", "info"] + extra)
    let ready = try await process.waitForReady()
    guard let identifier = ready["id"] else { throw LiveTestError("no identifier in the ready line: \(ready)") }
    try await process.waitForLine(containing: "registered")
    return (process, identifier)
}

/// PE identifiers a resolution returns.
func resolve(_ registrar: String, pool: String, count: Int = 50, transport: String = "mptcp") async throws -> (status: Int32, identifiers: [String], output: [String]) {
    let (status, output) = try await runEdgepool(["resolve", "--registrar", registrar, "--pool", pool, "--count", "\(count)", "--transport", transport])
    let identifiers = output.filter { $0.hasPrefix("  $") }.map { String($0.split(separator: " ")[0]) }
    return (status, identifiers, output)
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(nanoseconds: 200_000_000)
    }
    throw LiveTestError("not within \(timeout)s: \(what)")
}

/// A free TCP port on loopback (bound, then released).
func freePort() throws -> Int { try freeLoopbackPort() }

/// Sends `bytes` in one write over a plain TCP connection to 127.0.0.1:`port`, then reads
/// what comes back within `wait` seconds. Returns (local port, bytes received). The blocking
/// socket calls run on a thread of their own, not on the test runner's cooperative threads.
func rawExchange(port: Int, bytes: [UInt8], wait: Double = 1.0) async throws -> (localPort: Int, received: [UInt8]) {
    try await offCooperativePool { try blockingRawExchange(port: port, bytes: bytes, wait: wait) }
}

/// Runs blocking work on a new thread and awaits its result.
func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.start()
    }
}

private func blockingRawExchange(port: Int, bytes: [UInt8], wait: Double) throws -> (localPort: Int, received: [UInt8]) {
    let connection = try RawConnection(port: port)
    try? connection.sendAll(bytes)   // the peer may close before taking it all: read what it said
    return (connection.localPort, connection.receive(for: wait).bytes)
}

/// The resident memory of a process in KiB (VmRSS).
func residentKiB(of pid: Int32) throws -> Int {
    guard let bytes = ResidentMemory.bytes(of: pid) else { throw LiveTestError("no VmRSS for \(pid)") }
    return bytes / 1024
}
