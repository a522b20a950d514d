import CalcApp
import Foundation
import NIOCore

public struct SimulatorBenchmark: Sendable {

    /// PEs in the scaled run.
    public var elements: Int = 10_000

    /// Pool users in the scaled run.
    public var users: Int = 100_000

    /// Simulated seconds of the scaled run.
    public var seconds: Double = 30

    public init(elements: Int = 10_000, users: Int = 100_000, seconds: Double = 30) {
        self.elements = elements
        self.users = users
        self.seconds = seconds
    }

    public func run() async throws {
        let sweepStart = NIODeadline.now()
        let points = await OffloadingSweep.run(.deviceEdgeCloud)
        let sweepWall = Double((NIODeadline.now() - sweepStart).nanoseconds) / 1e9
        let sweepEvents = points.flatMap(\.runs).map(\.events).reduce(0, +)
        let perCore = Double(sweepEvents) / sweepWall / 2
        print(String(format: "default sweep: %d runs, %d events, %.2f s wall on 2 cores (%.0f events/s per core)",
                     points.flatMap(\.runs).count, sweepEvents, sweepWall, perCore))
        BenchmarkFigures.record("simulator default sweep: events/s per core", perCore, unit: "/s", kind: .absolute, better: .higher)

        var scaled = OffloadingScenario.deviceEdgeCloud
        let base = scaled.elements.map(\.count).reduce(0, +)
        for index in scaled.elements.indices { scaled.elements[index].count = max(1, scaled.elements[index].count * elements / base) }
        scaled.sweep.duration = ScenarioDuration(seconds: seconds)
        let total = scaled.elements.map(\.count).reduce(0, +)
        let start = NIODeadline.now()
        var simulation = OffloadingSimulation(scenario: scaled, users: users, seed: 1)
        let result = simulation.run()
        let wall = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        print(String(format: "scaled run: %d PEs, %d users, %.0f s simulated: %d events, %d requests completed, %.2f s wall, %.0f events/s (%.2f× the sweep's per-core rate)",
                     total, users, seconds, result.events, result.completed, wall, Double(result.events) / wall, Double(result.events) / wall / perCore))
        BenchmarkFigures.record("simulator \(total) PEs \(users) users: events/s", Double(result.events) / wall, unit: "/s", kind: .absolute, better: .higher)
        BenchmarkFigures.record("simulator \(total) PEs \(users) users: events/s / the sweep's per core", Double(result.events) / wall / perCore,
                                unit: "×", kind: .ratio, better: .higher)
    }
}
