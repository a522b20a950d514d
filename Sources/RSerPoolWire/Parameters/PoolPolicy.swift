import NIOCore

/// A pool member selection policy type (RFC 5356 §3, plus the reference implementation's
/// extensions). An open struct: a registrar can carry a policy it does not implement.
public struct PolicyType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let roundRobin = Self(0x0000_0001)
    public static let weightedRoundRobin = Self(0x0000_0002)
    public static let random = Self(0x0000_0003)
    public static let weightedRandom = Self(0x0000_0004)
    /// Reference implementation: the highest priority value wins.
    public static let priority = Self(0x0000_0005)
    public static let leastUsed = Self(0x4000_0001)
    public static let leastUsedWithDegradation = Self(0x4000_0002)
    public static let priorityLeastUsed = Self(0x4000_0003)
    public static let randomizedLeastUsed = Self(0x4000_0004)
    /// Reference implementation extensions.
    public static let randomizedPriorityLeastUsed = Self(0xB000_1001)
    public static let randomizedLeastUsedWithDegradation = Self(0xB000_1002)
    public static let priorityLeastUsedWithDegradation = Self(0xB000_1003)
    public static let randomizedPriorityLeastUsedWithDegradation = Self(0xB000_1004)

    /// Every type this package implements, with its short name (the names operators know).
    public static let implemented: [(PolicyType, String)] = [
        (.roundRobin, "rr"), (.weightedRoundRobin, "wrr"), (.random, "rand"), (.weightedRandom, "wrand"),
        (.priority, "prio"), (.leastUsed, "lu"), (.leastUsedWithDegradation, "lud"),
        (.priorityLeastUsed, "plu"), (.randomizedLeastUsed, "rlu"), (.randomizedPriorityLeastUsed, "rplu"),
        (.randomizedLeastUsedWithDegradation, "rlud"), (.priorityLeastUsedWithDegradation, "plud"),
        (.randomizedPriorityLeastUsedWithDegradation, "rplud"),
    ]

    /// The type for a short name ("plu") or a number ("0x40000003").
    public init?(name: String) {
        let lower = name.lowercased()
        if let match = Self.implemented.first(where: { $0.1 == lower }) {
            self = match.0
        } else if lower.hasPrefix("0x"), let value = UInt32(lower.dropFirst(2), radix: 16) {
            self.init(value)
        } else {
            return nil
        }
    }

    public var shortName: String? { Self.implemented.first { $0.0 == self }?.1 }

    /// How many u32 values follow the type, for the types this package knows.
    public var valueCount: Int? {
        switch self {
        case .roundRobin, .random: 0
        case .weightedRoundRobin, .weightedRandom, .priority, .leastUsed, .randomizedLeastUsed: 1
        case .leastUsedWithDegradation, .priorityLeastUsed, .randomizedPriorityLeastUsed,
             .randomizedLeastUsedWithDegradation: 2
        case .priorityLeastUsedWithDegradation, .randomizedPriorityLeastUsedWithDegradation: 3
        default: nil
        }
    }

    /// Whether the policy uses the PE's load (the PE must report load changes).
    public var isAdaptive: Bool { rawValue & 0x4000_0000 != 0 || (rawValue & 0xFFFF_F000) == 0xB000_1000 }

    public var description: String { shortName.map { "\($0.uppercased())" } ?? "policy 0x\(String(rawValue, radix: 16))" }
}

/// The Pool Member Selection Policy parameter (RFC 5354 §3.6, RFC 5356 §3): a type and its values.
///
/// Load values are fractions of `UInt32.max` (0xFFFFFFFF = 100 %). The named accessors read the
/// values in the order RFC 5356 and the reference implementation put them.
public struct PoolPolicy: Hashable, Sendable, CustomStringConvertible {
    public var type: PolicyType
    public var values: [UInt32]

    public init(type: PolicyType, values: [UInt32] = []) {
        self.type = type
        self.values = values
    }

    public static let roundRobin = PoolPolicy(type: .roundRobin)
    public static let random = PoolPolicy(type: .random)
    public static func weightedRoundRobin(weight: UInt32) -> PoolPolicy { .init(type: .weightedRoundRobin, values: [weight]) }
    public static func weightedRandom(weight: UInt32) -> PoolPolicy { .init(type: .weightedRandom, values: [weight]) }
    public static func priority(_ priority: UInt32) -> PoolPolicy { .init(type: .priority, values: [priority]) }
    public static func leastUsed(load: UInt32) -> PoolPolicy { .init(type: .leastUsed, values: [load]) }
    public static func leastUsedWithDegradation(load: UInt32, degradation: UInt32) -> PoolPolicy {
        .init(type: .leastUsedWithDegradation, values: [load, degradation])
    }
    public static func priorityLeastUsed(load: UInt32, increment: UInt32) -> PoolPolicy {
        .init(type: .priorityLeastUsed, values: [load, increment])
    }
    public static func randomizedLeastUsed(load: UInt32) -> PoolPolicy { .init(type: .randomizedLeastUsed, values: [load]) }

    private func value(_ index: Int) -> UInt32 { index < values.count ? values[index] : 0 }

    /// Weight (WRR, WRAND) or priority (PRIO).
    public var weight: UInt32 { value(0) }
    /// The load (all Least-Used variants).
    public var load: UInt32 { value(0) }
    /// The second value: load degradation (LUD, RLUD) or load increment (PLU, RPLU, PLUD, RPLUD).
    public var loadIncrement: UInt32 { value(1) }
    /// The load degradation of PLUD and RPLUD (their third value).
    public var loadDegradation: UInt32 {
        switch type {
        case .priorityLeastUsedWithDegradation, .randomizedPriorityLeastUsedWithDegradation: value(2)
        case .leastUsedWithDegradation, .randomizedLeastUsedWithDegradation: value(1)
        default: 0
        }
    }

    /// The same policy with a new load value (LU family); others are returned unchanged.
    public func withLoad(_ load: UInt32) -> PoolPolicy {
        guard type.isAdaptive, !values.isEmpty else { return self }
        var copy = self
        copy.values[0] = load
        return copy
    }

    /// A load fraction (0…1) as the wire's u32.
    public static func load(fraction: Double) -> UInt32 {
        let clamped = max(0, min(1, fraction))
        return UInt32((clamped * Double(UInt32.max)).rounded())
    }

    public var description: String {
        guard !values.isEmpty else { return type.description }
        return "\(type)(\(values.map(String.init).joined(separator: ",")))"
    }
}

extension ByteBuffer {
    /// Writes a Pool Member Selection Policy parameter.
    public mutating func writePolicyParameter(_ policy: PoolPolicy) {
        writeTLV(type: ParameterType.poolMemberSelectionPolicy.rawValue) { buffer in
            buffer.writeInteger(policy.type.rawValue)
            for value in policy.values { buffer.writeInteger(value) }
        }
    }
}

extension PoolPolicy {
    static func decode(_ raw: RawParameter, limits: WireLimits) throws(RSerPoolWireError) -> PoolPolicy {
        var value = raw.value
        let type = PolicyType(try value.readFixed(UInt32.self, in: "policy parameter"))
        guard value.readableBytes % 4 == 0 else {
            throw RSerPoolWireError(.invalidValue, "policy values are not whole 32-bit words", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        let count = value.readableBytes / 4
        guard count <= limits.maximumPolicyValues else {
            throw RSerPoolWireError(.tooManyItems, "policy carries \(count) values", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        if let needed = type.valueCount, count < needed {
            throw RSerPoolWireError(.invalidValue, "\(type) needs \(needed) values, has \(count)", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        var values: [UInt32] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(value.readInteger()!) }
        return PoolPolicy(type: type, values: values)
    }
}
