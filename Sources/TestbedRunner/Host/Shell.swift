import Foundation

/// Running ip and tc.
public enum Shell {
    public static let ipTool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    public static let tcTool = ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs argv (the first word found on the PATH, ip and tc in sbin); returns status and stderr.
    public static func run(_ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        let process = Process()
        var arguments = arguments
        let executable: String
        switch arguments.first {
        case "ip": executable = ipTool ?? "/usr/sbin/ip"
        case "tc": executable = tcTool ?? "/usr/sbin/tc"
        default: executable = "/usr/bin/env"; arguments.insert("env", at: 0)
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return (127, "", "\(error)") }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Starts argv and leaves it running, output to `log`; fails if it is gone after 300 ms.
    public static func start(_ arguments: [String], log: String) -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments.first == "ip" ? (ipTool ?? "/usr/sbin/ip") : arguments[0])
        process.arguments = Array(arguments.dropFirst())
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else { return (1, "", "cannot write \(log)") }
        process.standardOutput = handle
        process.standardError = handle
        do { try process.run() } catch { return (127, "", "\(error)") }
        usleep(300_000)
        guard process.isRunning else {
            return (process.terminationStatus, "", (try? String(contentsOfFile: log, encoding: .utf8)) ?? "exited")
        }
        return (0, "", "")
    }

    public static func namespaces(prefix: String) -> [String] {
        run(["ip", "netns", "list"]).output.split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix(prefix) }
            .sorted()
    }
}

