import Foundation
import ProcessSupport
import NIOCore
import NIOPosix
import RSerPool
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif


/// What misbehaving clients cost a well-behaved one: the registrar under floods and
/// never-reading clients, and the gateway while one client holds its per-client maximum.
public struct AbuseBenchmark: Sendable {

    /// Flooding associations.
    public var flooders: Int = 20
    /// PEs in the pool.
    public var poolSize: Int = 512
    /// Clients that never read.
    public var neverReaders: Int = 10
    /// Seconds per measurement.
    public var seconds: Double = 3
    /// Extra registrar flags, e.g. '--message-rate 0' to see the floods without the rate limit.
    public var registrarFlags: String = ""

    public init(flooders: Int = 20, poolSize: Int = 512, neverReaders: Int = 10, seconds: Double = 3, registrarFlags: String = "") {
        self.flooders = flooders
        self.poolSize = poolSize
        self.neverReaders = neverReaders
        self.seconds = seconds
        self.registrarFlags = registrarFlags
    }

    public func run() async throws {
        try await registrarFloods()
        try await neverReadingClients()
        try await gatewayHeldConnections()
    }

    private func element(_ index: Int) -> PoolElementParameter {
        PoolElementParameter(identifier: PoolElementIdentifier(UInt32(index + 1)), registrationLife: 3_600_000,
                             userTransport: .tcp(.ipv4Loopback, port: UInt16(10_000 + index % 50_000)), policy: .leastUsed(load: 0))
    }

    private func registrarFloods() async throws {
        let registrar = try RegistrarChild(arguments: registrarFlags.split(separator: " ").map(String.init))
        defer { registrar.stop() }
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: try registrar.waitForPort())
        let owner = try await BenchClient.connect(to: address)
        try await owner.send((0..<poolSize).map { .registration(ASAPRegistration(poolHandle: "AbusePool", poolElement: element($0))) }, window: 32)
        let port = address.port ?? 0
        let baseline = try await pacedResolutions(port: port)
        let limits = AssociationLimits()
        print("registrar under floods (default limits per association: \(Int(limits.messageRate)) work units/s after a burst of \(Int(limits.messageBurst)), a unit = a message or a KiB of its replies; \(limits.messagesPerTurn) messages or \(limits.replyBytesPerTurn / 1024) KiB of replies per turn)")
        print("  a well-behaved PU: one resolution at a time, \(Int(Self.pacedRate)) a second, for \(seconds) s; answered/s and latency (median, 99th percentile)")
        print("  " + baseline.line("alone"))
        let floods: [(String, (Int) -> ASAPMessage)] = [
            ("re-registrations", { index in .registration(ASAPRegistration(poolHandle: "FloodPool", poolElement: element(100_000 + index))) }),
            ("resolutions of all \(poolSize) PEs", { _ in .handleResolution(ASAPHandleResolution(poolHandle: "AbusePool", option: .all)) }),
        ]
        for (name, message) in floods {
            let attackers = try await (0..<flooders).asyncMap { _ in try await BenchClient.connect(to: address) }
            let deadline = NIODeadline.now() + .nanoseconds(Int64((seconds + 2) * 1e9))
            let flooding = attackers.enumerated().map { $0.element.repeatUntil(deadline, message: message($0.offset), window: 32) }
            try await Task.sleep(nanoseconds: 1_500_000_000)   // the bursts spent: the steady state is measured
            let during = try await pacedResolutions(port: port)
            var flooded = 0
            for future in flooding { flooded += (try? await future.get()) ?? 0 }
            for attacker in attackers { try? await attacker.channel.close() }
            print("  " + during.line("\(flooders) associations flood \(name)", baseline: baseline) +
                  String(format: "; the flood got %.0f answers/s in all", Double(flooded) / (seconds + 2)))
            let figure = "abuse: a paced PU while \(flooders) associations flood \(name)"
            BenchmarkFigures.record("\(figure): answered / alone", during.answeredPerSecond / baseline.answeredPerSecond, unit: "×", kind: .ratio, better: .higher)
            // Tens of µs either way: context, not a gate.
            BenchmarkFigures.record("\(figure): median latency / alone", during.median / baseline.median, unit: "×", kind: .absolute, better: .lower)
        }
        try? await owner.channel.close()
    }

    static let pacedRate = 200.0

    struct PacedResult {
        var answeredPerSecond: Double
        var median: Double
        var p99: Double

        func line(_ label: String, baseline: PacedResult? = nil) -> String {
            var text = String(format: "%@: %5.0f answered/s, %6.0f µs median, %7.0f µs p99", label.padding(toLength: 52, withPad: " ", startingAt: 0),
                              answeredPerSecond, median, p99)
            if let baseline { text += String(format: " (%.2f× the rate, %.1f× the median alone)", answeredPerSecond / baseline.answeredPerSecond, median / baseline.median) }
            return text
        }
    }

    /// One handle resolution at a time at `pacedRate` over a blocking socket, for `seconds`.
    private func pacedResolutions(port: Int) async throws -> PacedResult {
        let seconds = self.seconds
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                guard let connection = try? RawConnection(port: port) else {
                    continuation.resume(throwing: BenchmarkError("cannot connect to the registrar"))
                    return
                }
                let fd = connection.fd
                defer { withExtendedLifetime(connection) {} }
                var request = ByteBuffer()
                request.writeASAPMessage(.handleResolution(ASAPHandleResolution(poolHandle: "AbusePool")))
                let bytes = Array(buffer: request)
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var latencies: [Double] = []
                let start = NIODeadline.now()
                let interval = 1e9 / Self.pacedRate
                var sent = 0
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while NIODeadline.now() - start < .nanoseconds(Int64(seconds * 1e9)) {
                    let due = start + .nanoseconds(Int64(Double(sent) * interval))
                    let wait = due - NIODeadline.now()
                    if wait > .zero { usleep(UInt32(wait.nanoseconds / 1000)) }
                    sent += 1
                    let sentAt = NIODeadline.now()
                    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    // One answer: its header says how long it is.
                    var got: [UInt8] = []
                    while got.count < 4 || got.count < Int(UInt16(got[2]) << 8 | UInt16(got[3])) {
                        let n = recv(fd, &chunk, chunk.count, 0)
                        guard n > 0 else { break }
                        got += chunk[0..<n]
                    }
                    guard got.count >= 4 else { break }
                    latencies.append(Double((NIODeadline.now() - sentAt).nanoseconds) / 1e3)
                }
                latencies.sort()
                let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
                func quantile(_ q: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
                continuation.resume(returning: PacedResult(answeredPerSecond: Double(latencies.count) / elapsed, median: quantile(0.5), p99: quantile(0.99)))
            }.start()
        }
    }

    private func neverReadingClients() async throws {
        let registrar = try RegistrarChild(arguments: [])
        defer { registrar.stop() }
        let port = try registrar.waitForPort()
        let owner = try await BenchClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port))
        try await owner.send((0..<poolSize).map { .registration(ASAPRegistration(poolHandle: "AbusePool", poolElement: element($0))) }, window: 32)
        var request = ByteBuffer()
        for _ in 0..<1024 { request.writeASAPMessage(.handleResolution(ASAPHandleResolution(poolHandle: "AbusePool", option: .all))) }
        let flood = Array(buffer: request)
        let before = registrar.residentBytes()
        let readers = (0..<neverReaders).compactMap { _ in try? RawConnection(port: port, receiveBuffer: 4096) }
        defer { withExtendedLifetime(readers) {} }
        let sockets = readers.map(\.fd)
        var sent = 0
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            var progress = false
            for fd in sockets {
                let n = flood.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                if n > 0 { sent += n; progress = true }
            }
            if !progress { usleep(10_000) }
        }
        let growth = registrar.residentBytes() - before
        print("registrar and clients that never read (\(sockets.count) clients, 4 KiB receive buffer each, \(seconds) s of resolutions of all \(poolSize) PEs)")
        print(String(format: "  requests sent: %.1f MB; registrar memory growth: %.1f MiB = %.0f KiB per client (bound: %d KiB write buffer + pinned socket buffers)",
                     Double(sent) / 1e6, Double(growth) / 1_048_576, Double(growth) / 1024 / Double(max(sockets.count, 1)), AssociationLimits().writeBufferHigh / 1024))
        try? await owner.channel.close()
    }

    private func gatewayHeldConnections() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let gateway = try ChildProcess.subcommand("gateway", ["gateway", "reverse", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:\(echo.port)", "--log-level", "error"])
        defer { gateway.signal(SIGTERM) }
        let ready = try await gateway.waitForReady()
        guard let port = ready.port("listen") else { throw BenchmarkError("no listening address in \(ready)") }
        func medianRoundTrip() -> Double {
            var times: [Double] = []
            for _ in 0..<200 {
                let start = NIODeadline.now()
                guard let connection = try? RawConnection(port: port) else { continue }
                defer { withExtendedLifetime(connection) {} }
                let fd = connection.fd
                var byte: UInt8 = 0x2A
                _ = send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                if recv(fd, &byte, 1, 0) == 1 { times.append(Double((NIODeadline.now() - start).nanoseconds) / 1e3) }
            }
            times.sort()
            return times.isEmpty ? .nan : times[times.count / 2]
        }
        let alone = medianRoundTrip()
        let connections = (0..<1_100).compactMap { _ in try? RawConnection(port: port, source: "127.0.0.2") }
        defer { withExtendedLifetime(connections) {} }
        let held = connections.map(\.fd)
        usleep(500_000)
        var refused = 0
        for fd in held {
            var byte: UInt8 = 0
            if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 { refused += 1 }
        }
        let during = medianRoundTrip()
        print("gateway (reverse proxy, default limits: 1,000 connections per client) while 127.0.0.2 holds \(held.count) idle connections (\(refused) closed at accept)")
        print(String(format: "  another client's connect + 1-byte echo: median %.0f µs alone, %.0f µs meanwhile = %.2f×", alone, during, during / alone))
        BenchmarkFigures.record("abuse: gateway connect while one client holds its maximum / alone", during / alone, unit: "×", kind: .ratio, better: .lower)
    }
}

/// A TCP echo server on loopback (SwiftNIO), for the gateway's backend.
private final class EchoServer: Sendable {
    let channel: Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init() throws {
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() { channel.close(promise: nil) }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
}
