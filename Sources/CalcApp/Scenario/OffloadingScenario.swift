import Foundation
import NIOCore
import RSerPoolWire

/// A duration in a scenario file: "10s", "250ms", "5m", or a number of seconds.
public struct ScenarioDuration: Codable, Hashable, Sendable, CustomStringConvertible {
    public var seconds: Double
    public init(seconds: Double) { self.seconds = seconds }
    public var amount: TimeAmount { .nanoseconds(Int64((seconds * 1e9).rounded())) }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            seconds = number
        } else {
            let text = try container.decode(String.self).trimmingCharacters(in: .whitespaces).lowercased()
            let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
            guard let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }), let value = Double(text.dropLast(suffix.count)),
                  value >= 0, value.isFinite else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not a duration such as 10s or 250ms"))
            }
            seconds = value * scale
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { seconds >= 1 || seconds == 0 ? "\(formatNumber(seconds))s" : "\(formatNumber(seconds * 1000))ms" }
}

/// A number as a scenario file writes it: integers without a fraction.
public func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

/// A calculation rate as the CalcApp tools print it: `1.00M/s`, `500k/s`.
public func formatRate(_ value: Double) -> String {
    value >= 1_000_000 ? String(format: "%.2fM/s", value / 1_000_000) : String(format: "%.0fk/s", value / 1000)
}

/// A random quantity: exponential (the default of the experiment), constant, or uniform.
public struct Distribution: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable { case exponential, constant, uniform }
    public var kind: Kind
    /// The mean (exponential, constant), or the midpoint (uniform).
    public var mean: Double
    /// Uniform only: half the width around the mean.
    public var spread: Double?

    public init(_ kind: Kind, mean: Double, spread: Double? = nil) {
        self.kind = kind
        self.mean = mean
        self.spread = spread
    }

    public func sample<G: RandomNumberGenerator>(using generator: inout G) -> Double {
        switch kind {
        case .constant: return mean
        case .exponential: return -mean * log(Double.random(in: Double.leastNonzeroMagnitude..<1, using: &generator))
        case .uniform:
            let half = spread ?? mean
            return Double.random(in: max(0, mean - half)...(mean + half), using: &generator)
        }
    }
}

/// The offloading experiment as data: who serves (PEs in groups: on the device, at the edge, in
/// clouds), who asks (pool users on the device), and the sweep to run.
public struct OffloadingScenario: Codable, Hashable, Sendable {
    /// A group of identical PEs at one place.
    public struct ElementGroup: Codable, Hashable, Sendable {
        public var name: String
        public var count: Int
        /// Calculations per second of each PE.
        public var capacity: Double
        /// Priority Least Used load increment, 0…1.
        public var increment: Double
        /// One-way network delay between the device and these PEs.
        public var delay: ScenarioDuration
    }

    /// How the pool users generate work.
    public struct Users: Codable, Hashable, Sendable {
        /// Calculations per request.
        public var requestSize: Distribution
        /// Time between two requests of one user (seconds).
        public var interArrival: Distribution
    }

    /// What to run.
    public struct Sweep: Codable, Hashable, Sendable {
        /// Numbers of pool users, one point each.
        public var users: [Int]
        public var duration: ScenarioDuration
        public var repetitions: Int
    }

    public var name: String
    public var poolHandle: String
    /// The pool policy (short name, e.g. "plu").
    public var policy: String
    /// Jobs a PE works on at once; one more is rejected.
    public var maxJobs: Int
    public var elements: [ElementGroup]
    public var users: Users
    public var sweep: Sweep
    /// Cookie cadence for failover.
    public var cookieInterval: ScenarioDuration
    public var cookieCalculations: Double
    public var seed: UInt64

    public static let keys: Set<String> = ["name", "poolHandle", "policy", "maxJobs", "elements", "users", "sweep",
                                           "cookieInterval", "cookieCalculations", "seed"]

    /// The experiment of the brief (§2.2): one PE on the device (200,000 calculations/s,
    /// increment 100 %), two at the mobile edge (1,000,000/s, 10 %, a few ms), three cloud
    /// sites at ~20 ms and one far site at >300 ms (1,000,000/s, 50 %); requests of 1,000,000
    /// calculations every 10 s on average (exponential); 1…64 users, 300 s, 5 repetitions.
    public static let deviceEdgeCloud = OffloadingScenario(
        name: "device-edge-cloud", poolHandle: "CalcAppPool", policy: "plu", maxJobs: 4,
        elements: [
            ElementGroup(name: "device", count: 1, capacity: 200_000, increment: 1.0, delay: ScenarioDuration(seconds: 0)),
            ElementGroup(name: "edge", count: 2, capacity: 1_000_000, increment: 0.1, delay: ScenarioDuration(seconds: 0.003)),
            ElementGroup(name: "cloud", count: 3, capacity: 1_000_000, increment: 0.5, delay: ScenarioDuration(seconds: 0.020)),
            ElementGroup(name: "cloud-far", count: 1, capacity: 1_000_000, increment: 0.5, delay: ScenarioDuration(seconds: 0.150)),
        ],
        users: Users(requestSize: Distribution(.exponential, mean: 1_000_000), interArrival: Distribution(.exponential, mean: 10)),
        sweep: Sweep(users: [1, 2, 4, 8, 16, 32, 48, 64], duration: ScenarioDuration(seconds: 300), repetitions: 5),
        cookieInterval: ScenarioDuration(seconds: 5), cookieCalculations: 5_000_000, seed: 1)

    /// Checks the values; the error names the field.
    public func validate() throws {
        func fail(_ message: String) throws -> Never { throw ScenarioError(message) }
        if poolHandle.isEmpty || poolHandle.utf8.count > WireLimits.defaultMaximumPoolHandleLength { try fail("poolHandle must be 1…32 bytes") }
        if PolicyType(name: policy) == nil { try fail("policy '\(policy)' is unknown (try plu, lu, rr, …)") }
        if maxJobs < 1 { try fail("maxJobs must be at least 1") }
        if elements.isEmpty { try fail("elements: the pool needs at least one group") }
        for (index, group) in elements.enumerated() {
            let at = "elements[\(index)] (\(group.name))"
            if group.count < 1 { try fail("\(at).count must be at least 1") }
            if !(group.capacity > 0) { try fail("\(at).capacity must be positive") }
            if !(0...1).contains(group.increment) { try fail("\(at).increment must be between 0 and 1") }
        }
        if !(users.requestSize.mean >= 1) { try fail("users.requestSize.mean must be at least 1 calculation") }
        if !(users.interArrival.mean > 0) { try fail("users.interArrival.mean must be positive") }
        if sweep.users.isEmpty || sweep.users.contains(where: { $0 < 1 }) { try fail("sweep.users must list positive numbers") }
        if !(sweep.duration.seconds > 0) { try fail("sweep.duration must be positive") }
        if sweep.repetitions < 1 { try fail("sweep.repetitions must be at least 1") }
    }

    /// Reads a scenario file: unknown keys and bad values are errors that name them.
    /// The built-in scenario, or the one in `file`, with the sweep overridden where a value
    /// is given (the command line's --users, --duration, --repetitions), validated.
    public static func chosen(file: String?, users: [Int] = [], duration: TimeAmount? = nil, repetitions: Int? = nil) throws -> OffloadingScenario {
        var chosen = OffloadingScenario.deviceEdgeCloud
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw ScenarioError("cannot read the scenario file '\(file)'") }
            chosen = try load(data, source: file)
        }
        if !users.isEmpty { chosen.sweep.users = users }
        if let duration { chosen.sweep.duration = ScenarioDuration(seconds: Double(duration.nanoseconds) / 1e9) }
        if let repetitions { chosen.sweep.repetitions = repetitions }
        try chosen.validate()
        return chosen
    }

    public static func load(_ data: Data, source: String) throws -> OffloadingScenario {
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let unknown = Set(object.keys).subtracting(keys)
            if !unknown.isEmpty {
                throw ScenarioError("\(source): unknown key(s) \(unknown.sorted().joined(separator: ", ")); known: \(keys.sorted().joined(separator: ", "))")
            }
        }
        let scenario: OffloadingScenario
        do {
            scenario = try JSONDecoder().decode(OffloadingScenario.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw ScenarioError("\(source): missing '\((context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))'")
        } catch let DecodingError.dataCorrupted(context) {
            throw ScenarioError("\(source): '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ScenarioError("\(source): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw ScenarioError("\(source): \(error)")
        }
        do {
            try scenario.validate()
        } catch let error as ScenarioError {
            throw ScenarioError("\(source): \(error.message)")
        }
        return scenario
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }
}

public struct ScenarioError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
