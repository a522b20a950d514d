import Foundation
import NIOCore
import Testing
@testable import CalcApp

@Suite("Offloading simulation")
struct SimulationTests {
    static let short: OffloadingScenario = {
        var scenario = OffloadingScenario.deviceEdgeCloud
        scenario.sweep.duration = ScenarioDuration(seconds: 120)
        return scenario
    }()

    @Test func sameSeedSameResult() {
        var a = OffloadingSimulation(scenario: Self.short, users: 16, seed: 7)
        var b = OffloadingSimulation(scenario: Self.short, users: 16, seed: 7)
        #expect(a.run() == b.run())
        var c = OffloadingSimulation(scenario: Self.short, users: 16, seed: 8)
        var d = OffloadingSimulation(scenario: Self.short, users: 16, seed: 7)
        #expect(c.run() != d.run())
    }

    @Test func everyRequestIsAccountedFor() {
        var simulation = OffloadingSimulation(scenario: Self.short, users: 32, seed: 3)
        let result = simulation.run()
        #expect(result.submitted > 0)
        #expect(result.submitted == result.completed + result.inFlight)
        #expect(result.inFlight <= 32, "at most one request per user in hand, the rest queued: \(result.inFlight)")
    }

    @Test func singleUserOnOnePEIsExact() {
        // One edge PE 3 ms away, constant 1,000,000-calculation requests every 10 s:
        // start-up = connect (1 RTT) + REQUEST/ACCEPT (1 RTT) = 12 ms; processing, seen by the
        // PU from ACCEPT to COMPLETE (both one-way delayed alike), = 1 s; no queuing.
        var scenario = Self.short
        scenario.elements = [.init(name: "edge", count: 1, capacity: 1_000_000, increment: 0.1, delay: ScenarioDuration(seconds: 0.003))]
        scenario.users = .init(requestSize: Distribution(.constant, mean: 1_000_000), interArrival: Distribution(.constant, mean: 10))
        var simulation = OffloadingSimulation(scenario: scenario, users: 1, seed: 1)
        let result = simulation.run()
        #expect(result.completed == 11)
        #expect(abs(result.queuingTime) < 1e-9)
        #expect(abs(result.startupTime - 0.012) < 1e-6, "\(result.startupTime)")
        #expect(abs(result.processingTime - 1.0) < 1e-6, "\(result.processingTime)")
        #expect(abs(result.utilization["edge"]! - 11.0 / 120) < 1e-3)
    }

    @Test func priorityLeastUsedKeepsWorkAtTheEdgeUntilItFills() {
        var light = OffloadingSimulation(scenario: Self.short, users: 2, seed: 11)
        let low = light.run()
        #expect(low.completedBy["edge"]! > 0)
        #expect(low.completedBy["device"]! == 0, "the device's PE idles at low load: \(low.completedBy)")
        #expect(low.completedBy["cloud"]! + low.completedBy["cloud-far"]! == 0, "clouds idle at low load: \(low.completedBy)")
        var heavy = OffloadingSimulation(scenario: Self.short, users: 64, seed: 11)
        let high = heavy.run()
        #expect(high.completedBy["cloud"]! > 0, "clouds join under load: \(high.completedBy)")
        #expect(high.utilization["edge"]! > high.utilization["cloud"]!)
    }

    @Test func summaryStatistics() {
        let summary = Summary([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        #expect(summary.mean == 6 && summary.min == 1 && summary.max == 11)
        #expect(abs(summary.q10 - 2) < 1e-12 && abs(summary.q90 - 10) < 1e-12)
    }

    @Test func scenarioFileErrorsNameTheField() {
        var scenario = OffloadingScenario.deviceEdgeCloud.encoded()
        var text = String(decoding: scenario, as: UTF8.self)
        text = text.replacingOccurrences(of: "\"capacity\" : 200000", with: "\"capacity\" : \"fast\"")
        scenario = Data(text.utf8)
        #expect(throws: ScenarioError.self) { try OffloadingScenario.load(scenario, source: "s.json") }
        let typo = Data(#"{"nmae": "x"}"#.utf8)
        do {
            _ = try OffloadingScenario.load(typo, source: "typo.json")
            Issue.record("accepted a typo")
        } catch {
            #expect("\(error)".contains("nmae"))
        }
        var bad = OffloadingScenario.deviceEdgeCloud
        bad.elements[0].increment = 2
        #expect(throws: ScenarioError.self) { try OffloadingScenario.load(bad.encoded(), source: "bad.json") }
        #expect((try? OffloadingScenario.load(OffloadingScenario.deviceEdgeCloud.encoded(), source: "ok.json")) == OffloadingScenario.deviceEdgeCloud)
    }

    @Test func theDefaultSweepProducesItsSummary() async throws {
        var scenario = OffloadingScenario.deviceEdgeCloud
        scenario.sweep.duration = ScenarioDuration(seconds: 60)
        scenario.sweep.repetitions = 2
        let points = await OffloadingSweep.run(scenario)
        #expect(points.map(\.users) == scenario.sweep.users && points.allSatisfy { $0.runs.count == 2 })
        let report = OffloadingReport(scenario: scenario, points: points, method: "test")
        let markdown = report.markdown()
        for users in scenario.sweep.users { #expect(markdown.contains("\n| \(users) | "), "row for \(users) users") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgepool-sweep-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try report.write(to: directory)
        for file in ["runs.csv", "summary.csv", "summary.md", "utilization.svg", "times.svg", "speed.svg", "capacity-over-time.svg"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path), "\(file)")
        }
        #expect(points[0].runs[0].capacityOverTime["edge"]?.count == OffloadingSimulation.samples)
    }
}
