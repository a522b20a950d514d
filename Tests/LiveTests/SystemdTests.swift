import Foundation
import ProcessSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The packaged systemd units (packaging/systemd) and the daemons' side of `Type=notify`.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(2))) struct SystemdTests {
    static var unavailableReason: String? { missingTool("/usr/bin/systemd-analyze", package: "systemd") }

    /// `systemd-analyze verify` on every unit, ExecStart pointed at the built binary (the
    /// man page check off: no man page is installed from a build tree).
    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func theUnitsVerify() async throws {
        let source = packageRoot.appendingPathComponent("packaging/systemd").path
        let units = try FileManager.default.contentsOfDirectory(atPath: source).filter { $0.hasSuffix(".service") }.sorted()
        #expect(units == ["edgepool-gateway@.service", "edgepool-paths.service", "edgepool-pe@.service", "edgepool-registrar.service"])
        let directory = temporaryFile("units")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for unit in units {
            let text = try String(contentsOfFile: "\(source)/\(unit)", encoding: .utf8).replacingOccurrences(of: "/usr/bin/edgepool", with: edgepoolBinary)
            #expect(text.contains("Type=notify"), "\(unit)")
            try text.write(toFile: "\(directory)/\(unit)", atomically: true, encoding: .utf8)
        }
        let verify = try await runCommand("/usr/bin/systemd-analyze", ["verify", "--man=no"] + units.map { "\(directory)/\($0)" })
        #expect(verify.status == 0 && verify.output.isEmpty, "\(verify.output)")
    }

    /// A daemon under `Type=notify`: READY=1 with its ready line, WATCHDOG=1 at half
    /// WatchdogSec, STOPPING=1 when SIGTERM begins the shutdown.
    @Test func aDaemonTellsSystemdWhenItIsReadyAliveAndStopping() async throws {
        let path = temporaryFile("notify")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let received = LockedMessages()
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !received.done {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { received.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
            }
        }
        reader.start()
        defer { received.finish() }

        let registrar = try liveProcess("registrar-notify", ["NOTIFY_SOCKET=\(path)", "WATCHDOG_USEC=400000", edgepoolBinary,
                                                             "registrar", "--listen", "127.0.0.1:0", "--transport", "tcp"], executable: "/usr/bin/env")
        _ = try await registrar.waitForReady()
        try await eventually(timeout: 2, "READY=1 with the ready line's fields as STATUS") {
            received.all.contains { $0.contains("READY=1") && $0.contains("STATUS=id=") }
        }
        try await eventually(timeout: 2, "WATCHDOG=1 within half of WatchdogSec") { received.all.contains("WATCHDOG=1") }
        registrar.signal(SIGTERM)
        #expect(try await registrar.waitForExit() == 0)
        try await eventually(timeout: 2, "STOPPING=1 at the shutdown") { received.all.contains("STOPPING=1") }
    }
}

/// Datagrams a reader thread collected.
private final class LockedMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    private var finished = false
    func append(_ message: String) { lock.withLock { messages.append(message) } }
    var all: [String] { lock.withLock { messages } }
    var done: Bool { lock.withLock { finished } }
    func finish() { lock.withLock { finished = true } }
}
