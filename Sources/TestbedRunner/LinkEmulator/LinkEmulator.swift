import Foundation
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// The userspace link emulator (`edgepool testbed emulate`) that `testbed up` starts in a
/// link's emulator namespace when the kernel has no netem. Frames read from one interface
/// (AF_PACKET) go through a delay line and a loss process (`LinkModel` of Testbed) and out of the
/// other; the rate limit is the tbf on the egress interface. SIGUSR1 blackholes the link
/// (both directions drop every frame, the interfaces stay up), SIGUSR2 restores it.
public struct LinkEmulator {
    /// Interface toward side A.
    public var a: String
    /// Interface toward side B.
    public var b: String
    /// Delay A→B/B→A, e.g. 20ms/20ms.
    public var delay = "0ms/0ms"
    /// Jitter A→B/B→A.
    public var jitter = "0ms/0ms"
    /// Loss A→B/B→A in percent, e.g. 1%/0%.
    public var loss = "0%/0%"
    /// Seed of the loss and jitter processes.
    public var seed: UInt64 = 0x5EED

    public init(a: String, b: String, delay: String = "0ms/0ms", jitter: String = "0ms/0ms", loss: String = "0%/0%", seed: UInt64 = 0x5EED) {
        self.a = a
        self.b = b
        self.delay = delay
        self.jitter = jitter
        self.loss = loss
        self.seed = seed
    }

    /// Emulates until SIGTERM or SIGINT, then prints each direction's statistics.
    public func run() throws {
        func pair(_ text: String, _ parse: (String) -> Double?) throws -> (Double, Double) {
            let parts = text.split(separator: "/").map(String.init)
            guard let first = parts.first.flatMap(parse), let second = (parts.count > 1 ? parts[1] : parts[0]).description as String?,
                  let last = parse(second) else { throw TestbedError("cannot read '\(text)'") }
            return (first, last)
        }
        let delays = try pair(delay, TopologyParser.parseMilliseconds)
        let jitters = try pair(jitter, TopologyParser.parseMilliseconds)
        let losses = try pair(loss) { $0.hasSuffix("%") ? Double($0.dropLast()).map { $0 / 100 } : nil }
        let sideA = try PacketSocket(interface: a), sideB = try PacketSocket(interface: b)
        let forward = EmulatedDirection(name: "\(a)→\(b)", input: sideA, output: sideB,
            model: LinkModel(delayNanoseconds: UInt64(delays.0 * 1e6), jitterNanoseconds: UInt64(jitters.0 * 1e6), loss: losses.0, seed: seed))
        let backward = EmulatedDirection(name: "\(b)→\(a)", input: sideB, output: sideA,
            model: LinkModel(delayNanoseconds: UInt64(delays.1 * 1e6), jitterNanoseconds: UInt64(jitters.1 * 1e6), loss: losses.1, seed: seed &+ 1))
        forward.start()
        backward.start()
        print("emulating \(a)↔\(b): delay \(delay), jitter \(jitter), loss \(loss)")
        fflush(nil)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGUSR1, SIG_IGN)
        signal(SIGUSR2, SIG_IGN)
        var switches: [DispatchSourceSignal] = []
        for (number, on) in [(SIGUSR1, true), (SIGUSR2, false)] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                forward.setBlackhole(on)
                backward.setBlackhole(on)
            }
            source.resume()
            switches.append(source)
        }
        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        for direction in [forward, backward] { print(direction.statistics) }
        fflush(nil)
    }
}

/// An AF_PACKET socket bound to one interface: every frame in, frames out as they are.
final class PacketSocket: @unchecked Sendable {
    let fd: Int32
    let interface: String
    static let ethPAll = UInt16(0x0003)

    init(interface: String) throws {
        self.interface = interface
        let index = if_nametoindex(interface)
        guard index > 0 else { throw TestbedError("no interface '\(interface)'") }
        fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(Self.ethPAll.bigEndian))
        guard fd >= 0 else { throw TestbedError("AF_PACKET socket: errno \(errno) (root needed)") }
        // struct sockaddr_ll: family, protocol (be), ifindex, hatype, pkttype, halen, addr[8]
        var address = [UInt8](repeating: 0, count: 20)
        withUnsafeBytes(of: UInt16(AF_PACKET)) { address.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: Self.ethPAll.bigEndian) { address.replaceSubrange(2..<4, with: $0) }
        withUnsafeBytes(of: Int32(index)) { address.replaceSubrange(4..<8, with: $0) }
        let bound = address.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
        guard bound == 0 else { throw TestbedError("bind to \(interface): errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, 263 /* SOL_PACKET */, 23 /* PACKET_IGNORE_OUTGOING */, &one, socklen_t(MemoryLayout<Int32>.size))
        var buffer: Int32 = 8 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// One direction: a receiving thread puts admitted frames on a FIFO with their departure
/// times; a sending thread sleeps until each is due and sends it. The FIFO is bounded.
final class EmulatedDirection: @unchecked Sendable {
    static let maximumQueuedFrames = 100_000

    let name: String
    private let input: PacketSocket
    private let output: PacketSocket
    private var model: LinkModel
    private let condition = NSCondition()
    private var queue: [(departure: UInt64, frame: [UInt8])] = []
    private var head = 0
    private var received = 0, lost = 0, overflowed = 0, sent = 0, sendErrors = 0, blackholed = 0
    private var blackhole = false

    init(name: String, input: PacketSocket, output: PacketSocket, model: LinkModel) {
        self.name = name
        self.input = input
        self.output = output
        self.model = model
    }

    var statistics: String {
        condition.lock()
        defer { condition.unlock() }
        return "\(name): received \(received), lost \(lost), blackholed \(blackholed), queue overflow \(overflowed), sent \(sent), send errors \(sendErrors)"
    }

    func setBlackhole(_ on: Bool) {
        condition.lock()
        blackhole = on
        condition.unlock()
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    func start() {
        let receiver = Thread { self.receive() }
        receiver.name = "emulator-rx \(name)"
        receiver.start()
        let sender = Thread { self.send() }
        sender.name = "emulator-tx \(name)"
        sender.start()
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(input.fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                if errno == EINTR { continue }
                return
            }
            let now = Self.now()
            condition.lock()
            received += 1
            if blackhole {
                blackholed += 1
            } else if let departure = model.admit(at: now) {
                if queue.count - head >= Self.maximumQueuedFrames {
                    overflowed += 1
                } else {
                    queue.append((departure, Array(buffer[0..<count])))
                    condition.signal()
                }
            } else {
                lost += 1
            }
            condition.unlock()
        }
    }

    private func send() {
        while true {
            condition.lock()
            while head == queue.count { condition.wait() }
            let (departure, frame) = queue[head]
            queue[head].frame = []
            head += 1
            if head > 4096 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            condition.unlock()
            if departure > Self.now() {
                var due = timespec(tv_sec: Int(departure / 1_000_000_000), tv_nsec: Int(departure % 1_000_000_000))
                while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nil) == EINTR {}
            }
            let result = frame.withUnsafeBytes { Glibc.send(output.fd, $0.baseAddress, $0.count, 0) }
            condition.lock()
            if result == frame.count { sent += 1 } else { sendErrors += 1 }
            condition.unlock()
        }
    }
}
