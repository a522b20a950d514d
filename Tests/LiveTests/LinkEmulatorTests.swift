import Foundation
import Testing

/// The userspace link emulator (this kernel has no netem): what it really does to a 100 Mbit/s
/// link with 10 ms delay each way and with 10 % loss, measured from the hosts.
@Suite(.serialized, .tags(.live, .namespaces), .timeLimit(.minutes(10))) struct LinkEmulatorTests {
    static func up(_ name: String, _ link: String) async throws -> String {
        let file = temporaryFile("emulated") + ".topo"
        try "topology \(name)\nhost a\nhost b\nlink a:x=10.96.0.1/24 b:y=10.96.0.2/24 \(link)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await runEdgepool(["testbed", "up", file])
        guard result.status == 0 else { throw LiveTestError("testbed up failed: \(result.output.suffix(5))") }
        return name
    }

    static func cpuSeconds(ofProcessesIn namespace: String) async throws -> Double {
        let pids = try await runCommand(TestNamespace.ipTool!, ["netns", "pids", namespace]).output.compactMap { Int($0) }
        var ticks = 0.0
        for pid in pids {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat[(stat.lastIndex(of: ")") ?? stat.startIndex)...].split(separator: " ")
            if fields.count > 13 { ticks += (Double(fields[12]) ?? 0) + (Double(fields[13]) ?? 0) }
        }
        return ticks / 100
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason ?? missingTool("/usr/bin/curl", package: "curl")) == nil, "\((TestNamespace.unavailableReason ?? missingTool("/usr/bin/curl", package: "curl")) ?? "")"))
    func delayAndRateAreWithinTenPercentAndTheCPUCostIsReported() async throws {
        let name = try await Self.up("e\(getpid() % 100_000)", "rate=100mbit delay=10ms")
        defer { TestbedLiveTests.forceDown(name) }
        let server = try liveProcess("origin", ["testbed", "exec", name, "b", "--", "/usr/bin/python3", Origin.script, "0.0.0.0", "8000"])
        try await server.waitForLine(containing: "origin listening on")
        // Round trip: TCP connect time (SYN → SYN/ACK), median of 30.
        let probe = """
        import socket, statistics, time
        samples = []
        for _ in range(30):
            t = time.perf_counter(); s = socket.create_connection(("10.96.0.2", 8000)); samples.append((time.perf_counter() - t) * 1000); s.close(); time.sleep(0.01)
        print(statistics.median(samples))
        """
        let rtt = try #require(Double(try await runEdgepool(["testbed", "exec", name, "a", "--", "/usr/bin/python3", "-c", probe]).output.last ?? ""))
        // Rate: a UDP flood of full frames (1472 payload + 42 header bytes = 1514 on the wire)
        // at more than the rate; the receiver counts what the bottleneck let through.
        let receiver = try liveProcess("receiver", ["testbed", "exec", name, "b", "--", "/usr/bin/python3", "-c", """
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000)); s.settimeout(2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        print("ready", flush=True)
        n = 0; first = last = 0.0
        try:
            while True:
                s.recv(2048); last = time.monotonic(); n += 1
                if n == 1: first = last
        except socket.timeout:
            print("frames", n, "seconds", last - first, flush=True)
        """])
        try await receiver.waitForLine(containing: "ready")
        let cpuBefore = try await Self.cpuSeconds(ofProcessesIn: "ept-\(name)-emu.0")
        let started = Date()
        _ = try await runEdgepool(["testbed", "exec", name, "a", "--", "/usr/bin/python3", "-c", """
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); payload = b"x" * 1472; end = time.monotonic() + 3
        while time.monotonic() < end:
            for _ in range(12): s.sendto(payload, ("10.96.0.2", 9000))
            time.sleep(0.001)
        """])
        let seconds = Date().timeIntervalSince(started)
        let cpu = try await Self.cpuSeconds(ofProcessesIn: "ept-\(name)-emu.0") - cpuBefore
        let words = try await receiver.waitForLine(containing: "frames", timeout: 10).split(separator: " ")
        let frames = try #require(Double(words[1])), window = try #require(Double(words[3]))
        let rate = frames * 1514 * 8 / window
        let download = try await runEdgepool(["testbed", "exec", name, "a", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download}",
                                              "http://10.96.0.2:8000/bytes/40000000"], timeout: 60)
        let goodput = (Double(download.output.last ?? "") ?? 0) * 8
        print(String(format: "link emulator, 100 Mbit/s + 10 ms each way: RTT %.2f ms (configured 20, %+.1f %%), rate %.1f Mbit/s of frames (%+.1f %%), TCP goodput %.1f Mbit/s, emulator CPU %.0f %% of a core at the rate",
                     rtt, (rtt / 20 - 1) * 100, rate / 1e6, (rate / 100e6 - 1) * 100, goodput / 1e6, cpu / seconds * 100))
        #expect(abs(rtt / 20 - 1) < 0.1, "RTT \(rtt) ms for 2 × 10 ms")
        #expect(abs(rate / 100e6 - 1) < 0.1, "rate \(rate / 1e6) Mbit/s")
    }

    @Test(.enabled(if: (TestNamespace.unavailableReason) == nil, "\((TestNamespace.unavailableReason) ?? "")"))
    func lossIsWithinTenPercentOfTheConfiguration() async throws {
        let name = try await Self.up("l\(getpid() % 100_000)", "loss=10%/0%")
        defer { TestbedLiveTests.forceDown(name) }
        let receiver = try liveProcess("receiver", ["testbed", "exec", name, "b", "--", "/usr/bin/python3", "-c", """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000)); s.settimeout(3)
        print("ready", flush=True)
        n = 0
        try:
            while True:
                s.recv(2048); n += 1
        except socket.timeout:
            print("received", n, flush=True)
        """])
        try await receiver.waitForLine(containing: "ready")
        let sent = 20_000
        _ = try await runEdgepool(["testbed", "exec", name, "a", "--", "/usr/bin/python3", "-c", """
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(\(sent)):
            s.sendto(b"x" * 100, ("10.96.0.2", 9000))
            if i % 200 == 0: time.sleep(0.005)
        """])
        let line = try await receiver.waitForLine(containing: "received", timeout: 20)
        let received = try #require(Int(line.split(separator: " ").last ?? ""))
        let loss = 1 - Double(received) / Double(sent)
        print(String(format: "link emulator, 10 %% loss configured: %.2f %% of %d datagrams lost", loss * 100, sent))
        #expect(abs(loss / 0.1 - 1) < 0.1, "loss \(loss)")
    }
}
