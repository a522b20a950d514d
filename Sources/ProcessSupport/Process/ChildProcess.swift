import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// A child process whose output is read line by line while it runs: the type the CLI's
/// runners, the benchmarks and the live tests share to start daemons and read what they say.
///
/// The output is read by a blocking loop on a thread of its own until end of file
/// (Foundation's `readabilityHandler` can report an empty read before the end, and Dispatch's
/// global queue runs about one block per core, so a loop there could starve the next
/// process's). Bytes are decoded as whole lines only — a read may end inside a multi-byte
/// character. The process and everything it started are killed when the object goes away,
/// so no daemon outlives a failing test or an interrupted run.
public final class ChildProcess: @unchecked Sendable {
    /// What happens to the child's standard error.
    public enum StandardError: Sendable {
        /// Read into ``lines`` together with standard output (daemons log there).
        case merged
        /// Thrown away.
        case discarded
    }

    /// This executable (`/proc/self/exe`): the runners start `edgepool` subcommands with it.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// A name for messages ("registrar", "sender 1").
    public let name: String
    private let process = Process()
    private let output = NIOLockedValueBox<[String]>([])
    /// Bytes after the last newline.
    private let partial = NIOLockedValueBox<[UInt8]>([])
    private let reachedEOF = NIOLockedValueBox(false)

    /// Starts `executable` with `arguments`.
    /// - Throws: ``ProcessSupportError`` when the executable is missing or cannot be started.
    public init(_ name: String, _ arguments: [String], executable: String, standardError: StandardError = .merged) throws {
        self.name = name
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ProcessSupportError("\(executable) is missing or not executable")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = standardError == .merged ? pipe : FileHandle.nullDevice
        let output = self.output, partial = self.partial, reachedEOF = self.reachedEOF
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        Thread {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(descriptor, &chunk, chunk.count)
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
        // Children inherit the spawning thread's signal mask; a test runner's threads block
        // SIGINT/SIGTERM, which would make a child (tshark, a daemon) deaf to its stop signal.
        var empty = sigset_t(), previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        do {
            try process.run()
        } catch {
            throw ProcessSupportError("cannot start \(executable): \(error)")
        }
    }

    deinit {
        // Kill it and everything it started (tshark's dumpcap, `ip netns exec`'s child); poll
        // rather than waitUntilExit(), which needs a run loop that may be gone at exit.
        guard process.isRunning else { return }
        for pid in ProcessTree.descendants(of: process.processIdentifier) + [process.processIdentifier] { kill(pid, SIGKILL) }
        for _ in 0..<100 where process.isRunning { usleep(20_000) }
    }

    /// Every line so far, the unfinished last one included.
    public var lines: [String] {
        output.withLockedValue { $0 } + [partial.withLockedValue { String(decoding: $0, as: UTF8.self) }].filter { !$0.isEmpty }
    }

    public var pid: pid_t { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    /// The exit status (valid once ``isRunning`` is false).
    public var terminationStatus: Int32 { process.terminationStatus }
    /// Whether the output reached its end (the process and every holder of its pipe are gone).
    public var outputEnded: Bool { reachedEOF.withLockedValue { $0 } }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// The resident memory of the process in bytes (nil once it has exited).
    public func residentBytes() -> Int? { ResidentMemory.bytes(of: pid) }

    /// The first line containing `text`, if it came already.
    public func line(containing text: String) -> String? { lines.first { $0.contains(text) } }

    /// Waits for a line containing `text` and returns it.
    /// - Throws: ``ProcessSupportError`` with the last lines of output when none came within
    ///   `timeout` seconds or the process ended without one.
    @discardableResult
    public func waitForLine(containing text: String, timeout: Double = 20) async throws -> String {
        try await poll(timeout, interval: 0.02, failure: "no line with '\(text)'") { self.lineOrEnd(text) }
    }

    /// ``waitForLine(containing:timeout:)`` for threads that may block.
    @discardableResult
    public func waitForLineBlocking(containing text: String, timeout: Double = 20) throws -> String {
        try pollBlocking(timeout, failure: "no line with '\(text)'") { self.lineOrEnd(text) }
    }

    /// The daemon's ready line (see ``ReadyLine``), waited for like ``waitForLine(containing:timeout:)``.
    @discardableResult
    public func waitForReady(timeout: Double = 20) async throws -> ReadyLine {
        try await poll(timeout, interval: 0.02, failure: "no ready line") { self.readyOrEnd() }
    }

    /// ``waitForReady(timeout:)`` for threads that may block.
    @discardableResult
    public func waitForReadyBlocking(timeout: Double = 20) throws -> ReadyLine {
        try pollBlocking(timeout, failure: "no ready line") { self.readyOrEnd() }
    }

    /// Waits for the process to end and its output to drain; returns its exit status.
    @discardableResult
    public func waitForExit(timeout: Double = 30) async throws -> Int32 {
        try await poll(timeout, interval: 0.05, failure: "still running") { self.exitStatus() }
    }

    /// ``waitForExit(timeout:)`` for threads that may block.
    @discardableResult
    public func waitForExitBlocking(timeout: Double = 30) throws -> Int32 {
        try pollBlocking(timeout, failure: "still running") { self.exitStatus() }
    }

    // MARK: - Polling

    private enum Poll<T> { case done(T), failed, waiting }

    private func lineOrEnd(_ text: String) -> Poll<String> {
        if let line = line(containing: text) { return .done(line) }
        guard !isRunning else { return .waiting }
        awaitDrain()
        return line(containing: text).map(Poll.done) ?? .failed
    }

    private func readyOrEnd() -> Poll<ReadyLine> {
        func ready() -> ReadyLine? { lines.lazy.compactMap(ReadyLine.init(parsing:)).first }
        if let line = ready() { return .done(line) }
        guard !isRunning else { return .waiting }
        awaitDrain()
        return ready().map(Poll.done) ?? .failed
    }

    private func exitStatus() -> Poll<Int32> {
        guard !isRunning else { return .waiting }
        // Let the output drain (children that inherited the pipe may keep it open a while).
        let drained = Date().addingTimeInterval(2)
        while !outputEnded, Date() < drained { usleep(10_000) }
        return .done(terminationStatus)
    }

    /// After the exit: give the reader a moment to take the last output.
    private func awaitDrain() {
        let drained = Date().addingTimeInterval(1)
        while !outputEnded, Date() < drained { usleep(10_000) }
    }

    private func failure(_ what: String, _ timeout: Double) -> ProcessSupportError {
        let state = isRunning ? "within \(timeout) s" : "before it exited (status \(terminationStatus))"
        return ProcessSupportError("\(name): \(what) \(state); its last output:\n" + lines.suffix(30).joined(separator: "\n"))
    }

    private func poll<T>(_ timeout: Double, interval: Double, failure what: String, _ check: () -> Poll<T>) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            switch check() {
            case .done(let value): return value
            case .failed: throw failure(what, timeout)
            case .waiting:
                guard Date() < deadline else { throw failure(what, timeout) }
                try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            }
        }
    }

    private func pollBlocking<T>(_ timeout: Double, failure what: String, _ check: () -> Poll<T>) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            switch check() {
            case .done(let value): return value
            case .failed: throw failure(what, timeout)
            case .waiting:
                guard Date() < deadline else { throw failure(what, timeout) }
                usleep(20_000)
            }
        }
    }
}

extension ChildProcess {
    /// A subcommand of this very executable (`edgepool bench gateway --serve-…`, `edgepool
    /// registrar …`): how the runners and benchmarks start their helpers. Standard error is
    /// thrown away unless asked for (a long run's logs would pile up in ``lines``).
    public static func subcommand(_ name: String, _ arguments: [String], standardError: StandardError = .discarded) throws -> ChildProcess {
        try ChildProcess(name, arguments, executable: currentExecutable, standardError: standardError)
    }
}
