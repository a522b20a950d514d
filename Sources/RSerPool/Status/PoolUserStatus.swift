import Logging
import NIOConcurrencyHelpers
import RSerPoolWire
import ServiceLifecycle

/// What a pool user tells rsplib's monitor (Component Status Protocol, `--csp`): where it is
/// (its pool), its requests so far, and the PE it talks to now as its association; a final
/// report when it ends, so that the monitor drops it at once.
public final class PoolUserStatus: Sendable {
    public let pool: PoolHandle
    /// The pool user's component identifier in the reports (random: a PU has no registered one).
    public let identifier: UInt64
    private let state = NIOLockedValueBox<(answered: Int, failed: Int, element: PoolElementIdentifier?)>((0, 0, nil))

    public init(pool: PoolHandle, identifier: UInt64 = .random(in: 1...UInt64(UInt32.max))) {
        self.pool = pool
        self.identifier = identifier
    }

    /// Counts one request's outcome; an answered one names the PE the user talks to.
    public func record(_ outcome: EchoExchange.Outcome) {
        state.withLockedValue { state in
            switch outcome {
            case .answered(let element, _):
                state.answered += 1
                state.element = element.identifier
            case .wrongPayload(let element):
                state.failed += 1
                state.element = element.identifier
            case .failed:
                state.failed += 1
            }
        }
    }

    /// The report's contents now.
    public func snapshot() -> ComponentStatusReporter.Snapshot {
        let (answered, failed, element) = state.withLockedValue { $0 }
        var status = "\(answered) answered, \(failed) failed"
        if let element { status += "; with PE \(element)" }
        return .init(location: "pool user of \(pool)", status: status,
                     associations: element.map { [.init(receiver: .init(.poolElement, UInt64($0.rawValue)), payloadProtocol: 0)] } ?? [])
    }

    /// Runs `body` while reports go to `monitor` every `interval` (nothing without a monitor),
    /// then sends the final report.
    public func reporting<T: Sendable>(to monitor: Endpoint?, interval: SettingDuration?, logger: Logger,
                                       _ body: () async throws -> T) async throws -> T {
        try await Self.reporting(to: monitor, interval: interval, identifier: identifier, logger: logger, snapshot: { self.snapshot() }, body)
    }

    /// Runs `body` while a pool user of any kind (echo, CalcApp) reports what `snapshot` says
    /// to `monitor` every `interval` as component `identifier`, then sends the final report.
    public static func reporting<T: Sendable>(to monitor: Endpoint?, interval: SettingDuration?, identifier: UInt64, logger: Logger,
                                              snapshot: @escaping @Sendable () -> ComponentStatusReporter.Snapshot,
                                              _ body: () async throws -> T) async throws -> T {
        let reporters = try DaemonRunner.statusReporter(monitor, interval: interval, sender: .init(.poolUser, identifier), logger: logger) { snapshot() }
        guard !reporters.isEmpty else { return try await body() }
        let group = ServiceGroup(configuration: .init(services: reporters.map { .init(service: $0) }, logger: logger))
        async let running: Void = group.run()
        let result: T
        do {
            result = try await body()
        } catch {
            await group.triggerGracefulShutdown()
            try? await running
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running
        return result
    }
}
