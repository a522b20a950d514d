import Foundation
import NIOConcurrencyHelpers
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

/// A child process whose output the test reads line by line. It is killed when the test
/// ends, whatever happens (deinit), so no daemon outlives a failing test.
final class LiveProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    private let output = NIOLockedValueBox<[String]>([])
    /// Bytes after the last newline (decoded only as whole lines: a chunk may end inside a
    /// multi-byte character).
    private let partial = NIOLockedValueBox<[UInt8]>([])
    private let reachedEOF = NIOLockedValueBox(false)

    init(_ name: String, _ arguments: [String], executable: String = edgepoolBinary) throws {
        self.name = name
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw LiveTestError("\(executable) is missing: run `swift build` first (scripts/test does)")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = self.output, partial = self.partial, reachedEOF = self.reachedEOF
        let reader = pipe.fileHandleForReading
        // A blocking read loop until EOF (Foundation's readabilityHandler can report an empty
        // read before the end, which would cut the output short), on a thread of its own:
        // Dispatch's global queue runs about one block per core, and every live process's loop
        // blocks in read() for the process's life — a new one could wait behind them and miss
        // the output of a process that exits at once.
        Thread {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(reader.fileDescriptor, &chunk, chunk.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                partial.withLockedValue { rest in
                    rest += chunk[0..<count]
                    guard let last = rest.lastIndex(of: UInt8(ascii: "\n")) else { return }
                    let lines = rest[..<last].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                        .map { String(decoding: $0, as: UTF8.self) }
                    rest.removeSubrange(...last)
                    output.withLockedValue { $0.append(contentsOf: lines) }
                }
            }
            reachedEOF.withLockedValue { $0 = true }
        }.start()
        // Children inherit the spawning thread's signal mask; the test runner's threads block
        // SIGINT/SIGTERM, which would make tshark deaf to its stop signal. Spawn with none.
        var empty = sigset_t(), previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    deinit {
        // Kill it and everything it started (tshark's dumpcap); poll rather than
        // waitUntilExit(), which needs a run loop that may be gone when the test process exits.
        for pid in descendants(of: process.processIdentifier) + [process.processIdentifier] { kill(pid, SIGKILL) }
        for _ in 0..<100 where process.isRunning { usleep(20_000) }
    }

    var lines: [String] {
        output.withLockedValue { $0 } + [partial.withLockedValue { String(decoding: $0, as: UTF8.self) }].filter { !$0.isEmpty }
    }
    var pid: pid_t { process.processIdentifier }

    /// Waits for a line containing `text`; returns it.
    @discardableResult
    func waitForLine(containing text: String, timeout: Double = 20) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: { $0.contains(text) }) { return line }
            if !process.isRunning, let line = lines.first(where: { $0.contains(text) }) { return line }
            if !process.isRunning { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw LiveTestError("\(name): no line with '\(text)' within \(timeout)s; output:\n" + lines.suffix(30).joined(separator: "\n"))
    }

    /// Waits for the process to end; returns its exit status.
    func waitForExit(timeout: Double = 30) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else {
                throw LiveTestError("\(name) still running after \(timeout)s; output:\n" + lines.suffix(30).joined(separator: "\n"))
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        // Let the output drain to its end (children that inherited the pipe may keep it open).
        let drained = Date().addingTimeInterval(2)
        while !reachedEOF.withLockedValue({ $0 }), Date() < drained { try await Task.sleep(nanoseconds: 10_000_000) }
        return process.terminationStatus
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }
}

struct LiveTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `edgepool ARGS` to the end and returns (status, output).
func runEdgepool(_ arguments: [String], timeout: Double = 30) async throws -> (status: Int32, output: [String]) {
    let process = try LiveProcess(arguments.first ?? "edgepool", arguments)
    let status = try await process.waitForExit(timeout: timeout)
    return (status, process.lines)
}

/// A registrar process on loopback; its ASAP port is read from its first line.
struct LiveRegistrar {
    let process: LiveProcess
    let port: Int
    var endpoint: String { "127.0.0.1:\(port)" }

    static func start(port: Int = 0, extra: [String] = []) async throws -> LiveRegistrar {
        let process = try LiveProcess("registrar", ["registrar", "--listen", "127.0.0.1:\(port)", "--log-level", "info"] + extra)
        let line = try await process.waitForLine(containing: "listening on")
        guard let range = line.range(of: #":(\d+) \("#, options: .regularExpression),
              let port = Int(line[range].dropFirst().dropLast(2)) else {
            throw LiveTestError("cannot read the port from: \(line)")
        }
        return LiveRegistrar(process: process, port: port)
    }
}

/// Starts a PE process and waits until it says what it serves.
func startPoolElement(registrar: String, pool: String, extra: [String] = []) async throws -> (process: LiveProcess, identifier: String) {
    let process = try LiveProcess("pe", ["pe", "--registrar", registrar, "--pool", pool, "--log-level", "info"] + extra)
    let line = try await process.waitForLine(containing: "edgepool pe ")
    let identifier = line.split(separator: " ")[2]
    try await process.waitForLine(containing: "registered")
    return (process, String(identifier))
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
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

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

/// The processes below `root`, children first, from /proc.
func descendants(of root: pid_t) -> [pid_t] {
    var parents: [pid_t: [pid_t]] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 1, let parent = pid_t(fields[1]) { parents[parent, default: []].append(pid) }
    }
    var result: [pid_t] = []
    func walk(_ pid: pid_t) {
        for child in parents[pid] ?? [] {
            walk(child)
            result.append(child)
        }
    }
    walk(root)
    return result
}
