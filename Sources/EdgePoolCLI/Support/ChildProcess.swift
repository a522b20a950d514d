import Foundation
import NIOConcurrencyHelpers

/// A child process (by default `edgepool` itself) whose output is read line by line (a
/// blocking read loop on its own thread until EOF). It is killed when dropped.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    private let output = NIOLockedValueBox<[String]>([])
    private let finished = NIOLockedValueBox(false)

    /// - Parameter captureErrors: read standard error into `lines` too (peers' complaints).
    init(_ name: String, _ arguments: [String], executable: String? = nil, captureErrors: Bool = false) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: executable
            ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = captureErrors ? pipe : FileHandle.nullDevice
        let output = self.output, finished = self.finished
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        Thread {
            var partial = ""
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(descriptor, &chunk, chunk.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                partial += String(decoding: chunk[0..<count], as: UTF8.self)
                var lines = partial.components(separatedBy: "\n")
                partial = lines.removeLast()
                output.withLockedValue { $0.append(contentsOf: lines) }
            }
            if !partial.isEmpty { output.withLockedValue { $0.append(partial) } }
            finished.withLockedValue { $0 = true }
        }.start()
        var empty = sigset_t(), previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var lines: [String] { output.withLockedValue { $0 } }

    func waitForLine(containing text: String, timeout: Double = 20) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: { $0.contains(text) }) { return line }
            if finished.withLockedValue({ $0 }) { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw OffloadRunError("\(name) printed no '\(text)' within \(timeout) s")
    }

    /// Waits for the end of the output (the process exited and its pipe closed).
    func waitForEnd(timeout: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !finished.withLockedValue({ $0 }) {
            guard Date() < deadline else { throw OffloadRunError("\(name) did not finish within \(timeout) s") }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// VmRSS in bytes (0 once it has exited).
    func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib * 1024
    }
}

struct OffloadRunError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
