import Logging
import NIOCore
import NIOPosix
import RSerPoolWire
import ServiceLifecycle

/// Sends Component Status Protocol reports (rsplib's `cspmonitor`) every `interval` while the
/// daemon runs, and a final one when it shuts down (`-cspserver` / `-cspinterval` in rsplib;
/// `--csp` / `--csp-interval` here). A `Service` in the daemon's group.
public struct ComponentStatusReporter: Service {
    /// What a report says now: where the component is, how it is, its load and associations.
    public struct Snapshot: Sendable {
        public var location: String
        public var status: String
        public var workload: Double?
        public var associations: [ComponentStatusReport.Association]
        public init(location: String, status: String, workload: Double? = nil, associations: [ComponentStatusReport.Association] = []) {
            self.location = location
            self.status = status
            self.workload = workload
            self.associations = associations
        }
    }

    /// rsplib's default interval.
    public static let defaultInterval: TimeAmount = .seconds(1)

    public let target: Endpoint
    public let interval: TimeAmount
    public let sender: ComponentStatusReport.ComponentID
    public let snapshot: @Sendable () async -> Snapshot
    public let logger: Logger

    public init(target: Endpoint, interval: TimeAmount = Self.defaultInterval, sender: ComponentStatusReport.ComponentID,
                logger: Logger, snapshot: @escaping @Sendable () async -> Snapshot) {
        self.target = target
        self.interval = interval
        self.sender = sender
        self.snapshot = snapshot
        self.logger = logger
    }

    public func run() async throws {
        let address = try target.socketAddress()
        let bind: SocketAddress = address.protocol == .inet6 ? try SocketAddress(ipAddress: "::", port: 0) : try SocketAddress(ipAddress: "0.0.0.0", port: 0)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(to: bind).get()
        let started = NIODeadline.now()
        logger.info("component status reports", metadata: ["csp": "\(target)", "interval": "\(interval)", "id": "\(sender)"])
        await cancelWhenGracefulShutdown {
            var warned = false
            while !Task.isCancelled {
                warned = await send(on: channel, to: address, started: started, final: false, warned: warned)
                try? await Task.sleep(nanoseconds: UInt64(interval.nanoseconds))
            }
        }
        _ = await send(on: channel, to: address, started: started, final: true, warned: false)
        try? await channel.close()
    }

    /// Sends one report; true once a failure has been logged (the first only).
    private func send(on channel: Channel, to address: SocketAddress, started: NIODeadline, final: Bool, warned: Bool) async -> Bool {
        let now = await snapshot()
        let report = ComponentStatusReport(sender: sender, timestampMicroseconds: UInt64((NIODeadline.now() - started).nanoseconds / 1000),
                                           reportIntervalMicroseconds: UInt32(clamping: interval.nanoseconds / 1000),
                                           location: now.location, status: now.status, workload: now.workload,
                                           associations: now.associations, isFinal: final)
        var buffer = channel.allocator.buffer(capacity: ComponentStatusReport.headerSize)
        report.write(into: &buffer)
        do {
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
            return warned
        } catch {
            if !warned { logger.warning("component status report not sent", metadata: ["csp": "\(target)", "error": "\(error)"]) }
            return true
        }
    }
}
