import NIOCore
import Testing
@testable import RSerPoolCore
import RSerPoolWire

private let now = NIODeadline.uptimeNanoseconds(1_000_000_000)

private func entry(_ id: UInt32, _ policy: PoolPolicy, port: UInt16? = nil) -> PoolElementEntry {
    PoolElementEntry(parameter: PoolElementParameter(
        identifier: PoolElementIdentifier(id), homeRegistrar: RegistrarIdentifier(1), registrationLife: 10_000,
        userTransport: .tcp(.ipv4Loopback, port: port ?? UInt16(1000 + id)), policy: policy), association: nil, now: now)
}

private func pool(_ policy: PolicyType, _ entries: [PoolElementEntry]) -> Pool {
    var pool = Pool(handle: "p", policyType: policy, transportKind: .tcpTransport, transportUse: .dataOnly)!
    for e in entries { pool.upsert(e) }
    return pool
}

private func picks(_ pool: inout Pool, rounds: Int, count: Int = 1, seed: UInt64 = 42) -> [[UInt32]] {
    var rng = SplitMix64(seed: seed)
    return (0..<rounds).map { _ in pool.select(count: count, using: &rng).map(\.identifier.rawValue) }
}

private func load(_ percent: Double) -> UInt32 { PoolPolicy.load(fraction: percent / 100) }

@Suite("Pool policies")
struct PoolPolicyTests {
    @Test func roundRobinCycles() {
        var p = pool(.roundRobin, [entry(1, .roundRobin), entry(2, .roundRobin), entry(3, .roundRobin)])
        #expect(picks(&p, rounds: 6).flatMap { $0 } == [1, 2, 3, 1, 2, 3])
    }

    @Test func roundRobinWithSeveralPerResolution() {
        var p = pool(.roundRobin, [entry(1, .roundRobin), entry(2, .roundRobin), entry(3, .roundRobin)])
        #expect(picks(&p, rounds: 3, count: 2) == [[1, 2], [3, 1], [2, 3]])
    }

    @Test func roundRobinSurvivesRemovalAndAddition() {
        var p = pool(.roundRobin, [entry(1, .roundRobin), entry(2, .roundRobin), entry(3, .roundRobin)])
        _ = picks(&p, rounds: 1)  // 1
        p.remove(PoolElementIdentifier(2))
        p.upsert(entry(4, .roundRobin))
        #expect(picks(&p, rounds: 6).flatMap { $0 } == [3, 1, 4, 3, 1, 4])
    }

    @Test func weightedRoundRobinIsProportional() {
        var p = pool(.weightedRoundRobin, [entry(1, .weightedRoundRobin(weight: 1)), entry(2, .weightedRoundRobin(weight: 2)),
                                           entry(3, .weightedRoundRobin(weight: 3))])
        let counts = Dictionary(grouping: picks(&p, rounds: 6000).flatMap { $0 }, by: { $0 }).mapValues(\.count)
        #expect(counts == [1: 1000, 2: 2000, 3: 3000])
    }

    @Test func randomIsRoughlyUniformAndDistinct() {
        var p = pool(.random, (1...4).map { entry($0, .random) })
        let rounds = picks(&p, rounds: 20_000, count: 2)
        #expect(rounds.allSatisfy { Set($0).count == 2 })
        let counts = Dictionary(grouping: rounds.flatMap { $0 }, by: { $0 }).mapValues(\.count)
        for id in UInt32(1)...4 { #expect(abs(Double(counts[id]!) / 10_000 - 1) < 0.05, "PE \(id): \(counts[id]!)") }
    }

    @Test func weightedRandomProportionsWithinTolerance() {
        var p = pool(.weightedRandom, [entry(1, .weightedRandom(weight: 1)), entry(2, .weightedRandom(weight: 3))])
        let counts = Dictionary(grouping: picks(&p, rounds: 40_000).flatMap { $0 }, by: { $0 }).mapValues(\.count)
        #expect(abs(Double(counts[2]!) / Double(counts[1]!) - 3) < 0.15, "ratio \(Double(counts[2]!) / Double(counts[1]!))")
    }

    @Test func weightedRandomIsDeterministicPerSeed() {
        var a = pool(.weightedRandom, (1...5).map { entry($0, .weightedRandom(weight: $0)) })
        var b = pool(.weightedRandom, (1...5).map { entry($0, .weightedRandom(weight: $0)) })
        #expect(picks(&a, rounds: 100, seed: 7) == picks(&b, rounds: 100, seed: 7))
        var c = pool(.weightedRandom, (1...5).map { entry($0, .weightedRandom(weight: $0)) })
        #expect(picks(&a, rounds: 100, seed: 7) != picks(&c, rounds: 100, seed: 8))
    }

    @Test func leastUsedPicksLowestLoadThenRotatesAmongEquals() {
        var p = pool(.leastUsed, [entry(1, .leastUsed(load: load(50))), entry(2, .leastUsed(load: load(10))),
                                  entry(3, .leastUsed(load: load(10))), entry(4, .leastUsed(load: load(90)))])
        #expect(picks(&p, rounds: 4).flatMap { $0 } == [2, 3, 2, 3])
        #expect(picks(&p, rounds: 1, count: 4) == [[2, 3, 1, 4]])
    }

    @Test func leastUsedFollowsLoadUpdates() {
        var p = pool(.leastUsed, [entry(1, .leastUsed(load: load(10))), entry(2, .leastUsed(load: load(20)))])
        #expect(picks(&p, rounds: 1) == [[1]])
        p.upsert(entry(1, .leastUsed(load: load(30))))
        #expect(picks(&p, rounds: 1) == [[2]])
    }

    @Test func priorityLeastUsedAddsTheIncrement() {
        // The offloading scenario: UE 100 %, MEC 10 %, cloud 50 % increments, all idle.
        var p = pool(.priorityLeastUsed, [
            entry(1, .priorityLeastUsed(load: 0, increment: load(100))),
            entry(2, .priorityLeastUsed(load: 0, increment: load(10))),
            entry(3, .priorityLeastUsed(load: 0, increment: load(50))),
        ])
        #expect(picks(&p, rounds: 1, count: 3) == [[2, 3, 1]])
        // MEC busy at 50 %: 50+10 = 60 > cloud's 0+50 → cloud first.
        p.upsert(entry(2, .priorityLeastUsed(load: load(50), increment: load(10))))
        #expect(picks(&p, rounds: 1, count: 3) == [[3, 2, 1]])
    }

    @Test func leastUsedWithDegradationSpreadsBetweenUpdates() {
        var p = pool(.leastUsedWithDegradation, [
            entry(1, .leastUsedWithDegradation(load: load(10), degradation: load(15))),
            entry(2, .leastUsedWithDegradation(load: load(20), degradation: load(15))),
        ])
        // 1 (10) → 1 becomes 25 → 2 (20) → 2 becomes 35 → 1 (25) → 1 becomes 40 → 2 (35)
        #expect(picks(&p, rounds: 4).flatMap { $0 } == [1, 2, 1, 2])
        p.upsert(entry(1, .leastUsedWithDegradation(load: load(10), degradation: load(15))))
        #expect(picks(&p, rounds: 1) == [[1]], "a load update resets the degradation")
    }

    @Test func priorityPicksHighestPriority() {
        var p = pool(.priority, [entry(1, .priority(1)), entry(2, .priority(9)), entry(3, .priority(9))])
        #expect(picks(&p, rounds: 4).flatMap { $0 } == [2, 3, 2, 3])
    }

    @Test func randomizedLeastUsedFavoursFreeCapacity() {
        var p = pool(.randomizedLeastUsed, [entry(1, .randomizedLeastUsed(load: 0)), entry(2, .randomizedLeastUsed(load: load(90)))])
        let counts = Dictionary(grouping: picks(&p, rounds: 22_000).flatMap { $0 }, by: { $0 }).mapValues(\.count)
        let ratio = Double(counts[1]!) / Double(counts[2]!)
        #expect(abs(ratio - 10) < 1.0, "free capacity 100 % vs 10 %: ratio \(ratio)")
    }

    @Test func largeLeastUsedPoolAlwaysReturnsTheMinimum() {
        var rng = SplitMix64(seed: 3)
        var loads: [UInt32: UInt32] = [:]
        var p = pool(.leastUsed, [])
        for id in UInt32(1)...20_000 {
            let l = UInt32.random(in: 0...1_000_000, using: &rng)
            loads[id] = l
            p.upsert(entry(id, .leastUsed(load: l)))
        }
        for _ in 0..<200 {
            let id = UInt32.random(in: 1...20_000, using: &rng)
            let l = UInt32.random(in: 0...1_000_000, using: &rng)
            loads[id] = l
            p.upsert(entry(id, .leastUsed(load: l)))
            let picked = p.select(count: 1, using: &rng)[0]
            #expect(picked.parameter.policy.load == loads.values.min())
        }
    }

    @Test func unsupportedPolicyHasNoPool() {
        #expect(Pool(handle: "p", policyType: PolicyType(0x1234), transportKind: .tcpTransport, transportUse: .dataOnly) == nil)
    }

    @Test func policyNamesRoundTrip() {
        for (type, name) in PolicyType.implemented {
            #expect(PolicyType(name: name) == type)
            #expect(SelectionStrategy(type) != nil, "\(name) is selectable")
        }
    }
}
