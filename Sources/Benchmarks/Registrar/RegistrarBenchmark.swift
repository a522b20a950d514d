import Foundation
import ProcessSupport
import NIOCore
import NIOPosix
import NIOSSL
import RSerPool
import RSerPoolWire
import CalcApp

public struct RegistrarBenchmark: Sendable {

    /// Pool sizes to measure.
    public var sizes: [Int] = [1_000, 10_000, 100_000]

    /// Associations used by the benchmark client.
    public var connections: Int = 4

    /// Requests outstanding per association.
    public var window: Int = 32

    /// Seconds of handle resolutions per measurement.
    public var seconds: Double = 3

    /// Also measure each size against a registrar with ASAP over mutually authenticated TLS
    /// 1.3 (certificates made for the run), beside the plain one.
    public var tls = false

    public init(sizes: [Int] = [1_000, 10_000, 100_000], connections: Int = 4, window: Int = 32, seconds: Double = 3, tls: Bool = false) {
        self.sizes = sizes
        self.connections = connections
        self.window = window
        self.seconds = seconds
        self.tls = tls
    }

    /// The same registrations and resolutions against a registrar that speaks ASAP over TLS
    /// 1.3 with mutual authentication (the benchmark's certificate authorized for every pool,
    /// as a proxy for the made-up PE addresses). Returns registrations/s and resolutions/s.
    private func measureTLS(size: Int, batches: [[ASAPMessage]], resolution: ASAPMessage) async throws -> (Double, Double) {
        let pki = try BenchCertificates()
        defer { pki.remove() }
        let registrar = try RegistrarChild(arguments: RegistrarChild.capacityArguments + [
            "--tls-certificate", pki.path("server.pem"), "--tls-key", pki.path("server.key"), "--tls-ca", pki.path("ca.pem"),
            "--authorize", "client=*", "--proxy-identity", "client"])
        defer { registrar.stop() }
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: try registrar.waitForPort())
        // The same client context a PE or PU makes from its flags.
        let context = try TLSFiles(certificateChain: pki.path("client.pem"), privateKey: pki.path("client.key"),
                                   trustRoots: pki.path("ca.pem")).clientContext()
        let clients = try await (0..<connections).asyncMap { _ in try await BenchClient.connect(to: address, tls: context) }
        defer { for client in clients { client.channel.close(promise: nil) } }
        let window = self.window
        let registrationTime = try await timed {
            try await clients.indices.concurrentForEach { try await clients[$0].send(batches[$0], window: window) }
        }
        return (Double(size) / registrationTime, try await rate(clients, message: resolution))
    }

    public func run() async throws {
        print("registrar benchmark: registrar in its own process, TCP on loopback, \(connections) associations × \(window) outstanding, \(seconds) s per resolution run")
        let header = [("PEs", 9), ("registrations/s", 16), ("resolutions/s", 16), ("baseline res./s", 16), ("cost vs base", 14), ("bytes/PE", 12)]
        print(header.map { String(repeating: " ", count: max(0, $0.1 - $0.0.count)) + $0.0 }.joined(separator: " "))
        var costs: [(Int, Double)] = []
        for size in sizes {
            let registrar = try RegistrarChild()
            defer { registrar.stop() }
            let port = try registrar.waitForPort()
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
            let clients = try await (0..<connections).asyncMap { _ in try await BenchClient.connect(to: address) }
            defer { for client in clients { client.channel.close(promise: nil) } }

            let rssBefore = registrar.residentBytes()
            let handle = PoolHandle("bench-\(size)")
            var generator = SystemRandomNumberGenerator()
            var messages: [[ASAPMessage]] = Array(repeating: [], count: connections)
            for index in 0..<size {
                let element = PoolElementParameter(
                    identifier: PoolElementIdentifier(UInt32(index + 1)), registrationLife: 3_600_000,
                    userTransport: .tcp(.v4(0x0A00_0000 | UInt32(index)), port: UInt16(1024 + index % 60_000)),
                    policy: .leastUsed(load: UInt32.random(in: 0...UInt32.max / 2, using: &generator)))
                messages[index % connections].append(.registration(ASAPRegistration(poolHandle: handle, poolElement: element)))
            }
            let batches = messages
            let window = self.window
            let registrationTime = try await timed {
                try await clients.indices.concurrentForEach { try await clients[$0].send(batches[$0], window: window) }
            }
            let rssAfter = registrar.residentBytes()

            let resolution = ASAPMessage.handleResolution(ASAPHandleResolution(poolHandle: handle))
            let baseline = ASAPMessage.handleResolution(ASAPHandleResolution(poolHandle: "no-such-pool"))
            let baseRate = try await rate(clients, message: baseline)
            let resolutionRate = try await rate(clients, message: resolution)
            let cost = baseRate / resolutionRate
            costs.append((size, 1 / resolutionRate))
            let perElement = rssBefore > 0 && rssAfter > rssBefore ? Double(rssAfter - rssBefore) / Double(size) : .nan
            print(String(format: "%9d %16.0f %16.0f %16.0f %13.2fx %12.0f", size, Double(size) / registrationTime,
                         resolutionRate, baseRate, cost, perElement))
            if tls {
                let (registrations, resolutions) = try await measureTLS(size: size, batches: batches, resolution: resolution)
                print("      TLS" + String(format: " %16.0f %16.0f", registrations, resolutions)
                      + String(format: "   (ASAP over TLS 1.3, mutual: %.2f× the plain registrations/s, %.2f× the resolutions/s)",
                               registrations / (Double(size) / registrationTime), resolutions / resolutionRate))
                BenchmarkFigures.record("registrar \(size) PEs: resolutions/s TLS / plain", resolutions / resolutionRate, unit: "×", kind: .ratio, better: .higher)
                BenchmarkFigures.record("registrar \(size) PEs: registrations/s TLS / plain", registrations / (Double(size) / registrationTime),
                                        unit: "×", kind: .ratio, better: .higher)
            }
            BenchmarkFigures.record("registrar \(size) PEs: registrations/s", Double(size) / registrationTime, unit: "/s", kind: .absolute, better: .higher)
            BenchmarkFigures.record("registrar \(size) PEs: resolutions/s", resolutionRate, unit: "/s", kind: .absolute, better: .higher)
            BenchmarkFigures.record("registrar \(size) PEs: resolution cost / a baseline request's", cost, unit: "×", kind: .ratio, better: .lower)
            BenchmarkFigures.record("registrar \(size) PEs: bytes per PE", perElement, unit: "B", kind: .absolute, better: .lower)
        }
        if let first = costs.first, let last = costs.last, first.0 != last.0 {
            print(String(format: "time per resolution at %d PEs / at %d PEs: %.2f", last.0, first.0, last.1 / first.1))
            BenchmarkFigures.record("registrar: time per resolution at \(last.0) / at \(first.0) PEs", last.1 / first.1, unit: "×", kind: .ratio, better: .lower)
        }
    }

    /// Resolutions per second over `seconds`, all associations pipelining.
    private func rate(_ clients: [BenchClient], message: ASAPMessage) async throws -> Double {
        let deadline = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
        let counts = try await clients.asyncMap { client in client.repeatUntil(deadline, message: message, window: window) }
        let started = NIODeadline.now()
        var total = 0
        for count in counts { total += try await count.get() }
        _ = started
        return Double(total) / seconds
    }
}

private func timed(_ body: () async throws -> Void) async throws -> Double {
    let start = NIODeadline.now()
    try await body()
    return Double((NIODeadline.now() - start).nanoseconds) / 1e9
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

extension Range where Bound == Int {
    func concurrentForEach(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in self { group.addTask { try await body(index) } }
            try await group.waitForAll()
        }
    }
}

/// A registrar child process for the benchmark.
struct RegistrarChild {
    /// The capacity benchmark's registrar: no per-association message rate (it measures the
    /// registrar, not the limit) and PEs at made-up addresses. `arguments` replace those two.
    static let capacityArguments = ["--message-rate", "0", "--accept-foreign-addresses", "--max-pool-elements-per-association", "1000000"]

    let child: ChildProcess

    init(arguments: [String] = RegistrarChild.capacityArguments) throws {
        child = try ChildProcess.subcommand("registrar", ["registrar", "--listen", "127.0.0.1:0", "--transport", "tcp",
                                                          "--keep-alive-interval", "3600s", "--log-level", "error"] + arguments,
                                            standardError: .merged)
    }

    /// The ASAP port from the registrar's ready line.
    func waitForPort() throws -> Int {
        guard let port = try child.waitForReadyBlocking().port("asap") else { throw BenchmarkError("the registrar's ready line names no ASAP address") }
        return port
    }

    /// VmRSS of the registrar process in bytes.
    func residentBytes() -> Int { child.residentBytes() ?? 0 }

    func stop() {
        child.signal(SIGTERM)
        for _ in 0..<100 where child.isRunning { usleep(20_000) }
    }
}

/// One benchmark association: sends ASAP requests keeping `window` outstanding.
final class BenchClient: Sendable {
    let channel: Channel
    private let handler: NIOLoopBound<PipelineHandler>

    private init(channel: Channel, handler: NIOLoopBound<PipelineHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// With `tls`, ASAP runs over TLS (the registrar's address must be in its certificate).
    static func connect(to address: SocketAddress, tls: NIOSSLContext? = nil) async throws -> BenchClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addASAPCodec()
                    try channel.pipeline.syncOperations.addHandler(PipelineHandler())
                }
            }.connect(to: address).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try! channel.pipeline.syncOperations.handler(type: PipelineHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return BenchClient(channel: channel, handler: handler)
    }

    /// Sends all `messages`, `window` at a time; returns when every answer arrived.
    func send(_ messages: [ASAPMessage], window: Int) async throws {
        let promise = channel.eventLoop.makePromise(of: Int.self)
        channel.eventLoop.execute { [handler] in handler.value.start(messages: messages, repeating: nil, until: nil, window: window, promise: promise) }
        _ = try await promise.futureResult.get()
    }

    /// Sends `message` over and over until `deadline`; the future gives the answers counted.
    func repeatUntil(_ deadline: NIODeadline, message: ASAPMessage, window: Int) -> EventLoopFuture<Int> {
        let promise = channel.eventLoop.makePromise(of: Int.self)
        channel.eventLoop.execute { [handler] in handler.value.start(messages: [], repeating: message, until: deadline, window: window, promise: promise) }
        return promise.futureResult
    }
}

final class PipelineHandler: ChannelInboundHandler {
    typealias InboundIn = ASAPInbound
    typealias OutboundOut = ASAPMessage
    private var context: ChannelHandlerContext?
    private var queue: [ASAPMessage] = []
    private var next = 0
    private var repeating: ASAPMessage?
    private var deadline: NIODeadline?
    private var outstanding = 0
    private var answered = 0
    private var promise: EventLoopPromise<Int>?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func start(messages: [ASAPMessage], repeating: ASAPMessage?, until deadline: NIODeadline?, window: Int, promise: EventLoopPromise<Int>) {
        queue = messages
        next = 0
        self.repeating = repeating
        self.deadline = deadline
        answered = 0
        outstanding = 0
        self.promise = promise
        for _ in 0..<window where sendNext() {}
        context?.flush()
        if outstanding == 0 { finish() }
    }

    private func sendNext() -> Bool {
        guard let context else { return false }
        let message: ASAPMessage
        if let repeating {
            guard let deadline, NIODeadline.now() < deadline else { return false }
            message = repeating
        } else {
            guard next < queue.count else { return false }
            message = queue[next]
            next += 1
        }
        outstanding += 1
        context.write(wrapOutboundOut(message), promise: nil)
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        outstanding -= 1
        answered += 1
        if sendNext() { } else if outstanding == 0 { finish() }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    private func finish() {
        promise?.succeed(answered)
        promise = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise?.fail(ChannelError.eof)
        promise = nil
    }
}
