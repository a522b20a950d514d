/// Mean, extremes and 10 %/90 % quantiles of a metric over repetitions.
public struct Summary: Hashable, Sendable, Codable {
    public var mean: Double
    public var min: Double
    public var max: Double
    public var q10: Double
    public var q90: Double

    public init(_ values: [Double]) {
        let sorted = values.filter { !$0.isNaN }.sorted()
        guard !sorted.isEmpty else {
            self.init(mean: .nan, min: .nan, max: .nan, q10: .nan, q90: .nan)
            return
        }
        self.init(mean: sorted.reduce(0, +) / Double(sorted.count), min: sorted.first!, max: sorted.last!,
                  q10: Self.quantile(sorted, 0.1), q90: Self.quantile(sorted, 0.9))
    }

    init(mean: Double, min: Double, max: Double, q10: Double, q90: Double) {
        self.mean = mean
        self.min = min
        self.max = max
        self.q10 = q10
        self.q90 = q90
    }

    /// Linear interpolation between the closest ranks.
    static func quantile(_ sorted: [Double], _ p: Double) -> Double {
        guard sorted.count > 1 else { return sorted[0] }
        let position = p * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = Swift.min(lower + 1, sorted.count - 1)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
    }
}

/// One point of a sweep: a number of users, its repetitions, and their summaries.
public struct SweepPoint: Hashable, Sendable, Codable {
    public var users: Int
    public var runs: [OffloadingRunResult]

    public init(users: Int, runs: [OffloadingRunResult]) {
        self.users = users
        self.runs = runs
    }

    public func summary(_ metric: (OffloadingRunResult) -> Double) -> Summary { Summary(runs.map(metric)) }
    public var queuingTime: Summary { summary(\.queuingTime) }
    public var startupTime: Summary { summary(\.startupTime) }
    public var processingTime: Summary { summary(\.processingTime) }
    public var handlingTime: Summary { summary(\.handlingTime) }
    public var handlingSpeed: Summary { summary(\.handlingSpeed) }
    public func utilization(_ group: String) -> Summary { summary { $0.utilization[group] ?? .nan } }
}

/// Runs every point of a scenario's sweep, each repetition with its own seed, in parallel.
public enum OffloadingSweep {
    public static func run(_ scenario: OffloadingScenario, progress: (@Sendable (Int, Int) -> Void)? = nil) async -> [SweepPoint] {
        let jobs = scenario.sweep.users.flatMap { users in (0..<scenario.sweep.repetitions).map { (users, $0) } }
        var results: [Int: [OffloadingRunResult]] = [:]
        await withTaskGroup(of: OffloadingRunResult.self) { group in
            var next = 0
            var done = 0
            let parallel = 2
            func add(_ index: Int) {
                let (users, repetition) = jobs[index]
                let seed = scenario.seed &* 1_000_003 &+ UInt64(users) &* 101 &+ UInt64(repetition)
                group.addTask {
                    var simulation = OffloadingSimulation(scenario: scenario, users: users, seed: seed)
                    return simulation.run()
                }
            }
            while next < min(parallel, jobs.count) { add(next); next += 1 }
            for await result in group {
                results[result.users, default: []].append(result)
                done += 1
                progress?(done, jobs.count)
                if next < jobs.count { add(next); next += 1 }
            }
        }
        return scenario.sweep.users.map { users in
            SweepPoint(users: users, runs: (results[users] ?? []).sorted { $0.seed < $1.seed })
        }
    }
}
