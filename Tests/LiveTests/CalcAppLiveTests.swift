import Foundation
import Testing

@Suite("Live: CalcApp offloading", .serialized, .tags(.live), .timeLimit(.minutes(3)))
struct CalcAppLiveTests {
    @Test func aKilledPEsJobCompletesOnAnotherPEFromItsCookie() async throws {
        let registrar = try await LiveRegistrar.start()
        let common = ["--registrar", registrar.endpoint, "--capacity", "1000000", "--cookie-interval", "200ms", "--log-level", "debug"]
        // Both PEs up before the job: with Priority Least Used the registrar picks the first
        // (increment 10 % < 50 %), so the job starts there.
        let first = try liveProcess("pe-1", ["calcapp-pe", "--increment", "0.1"] + common)
        let second = try liveProcess("pe-2", ["calcapp-pe", "--increment", "0.5"] + common)
        let secondID = try #require(try await second.waitForReady()["id"])
        try await first.waitForLine(containing: "registered")
        try await second.waitForLine(containing: "registered")
        // One job of 10,000,000 calculations (10 s at 1,000,000/s), submitted at 0.5 s.
        let user = try liveProcess("pu", ["calcapp-pu", "--log-level", "info", "--registrar", registrar.endpoint, "--users", "1", "--constant",
                                          "--request-size", "10000000", "--inter-arrival", "500ms", "--duration", "700ms",
                                          "--keep-alive", "500ms", "--drain", "30s"])
        try await first.waitForLine(containing: "accepted", timeout: 20)   // the job runs on the first PE
        // … and has sent cookies (every 200 ms): after 1.5 s the last one carries ≥ 1.2 s of
        // work even when this test's view of "accepted" is late (1.0 s raced the 1.0 s cookie).
        try await Task.sleep(nanoseconds: 1_500_000_000)
        first.signal(SIGKILL)
        let resumed: String
        do {
            resumed = try await second.waitForLine(containing: "resumed a job from its cookie", timeout: 15)
        } catch {
            throw LiveTestError("\(error)\n--- pool user:\n\(user.lines.suffix(15).joined(separator: "\n"))\n--- first PE:\n\(first.lines.suffix(8).joined(separator: "\n"))")
        }
        #expect(try await user.waitForExit(timeout: 40) == 0, "the job completed:\n\(user.lines.joined(separator: "\n"))")
        let done = try #require(user.lines.first { $0.hasPrefix("job 1:") })
        #expect(done.contains("by \(secondID)") && done.contains("failovers 1"), "\(done)")
        // Resumed, not restarted: the cookie carried at least a second's worth of work.
        let completed = resumed.components(separatedBy: "completed=").last.flatMap { Double($0.prefix { $0.isNumber }) } ?? 0
        #expect(completed >= 1_000_000, "resumed from \(completed) calculations: \(resumed)")
    }

    @Test func aShortScaledRunOfTheDefaultScenarioAccountsForEveryRequest() async throws {
        let (status, output) = try await runEdgepool(["demo", "--users", "16", "--duration", "60s", "--time-scale", "20"], timeout: 60)
        #expect(status == 0, "\(output.suffix(10))")
        let line = try #require(output.first { $0.contains("requests:") })
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        // "requests: S submitted, C completed, F queued or in progress at the end; …"
        #expect(numbers.count >= 3 && numbers[0] == numbers[1] + numbers[2] && numbers[1] > 0, "\(line)")
        // The crash is of an edge PE serving jobs, and the table and the summary say what became of them.
        let crash = try #require(output.first { $0.contains("crashes with") }, "\(output.suffix(20))")
        let crashedJobs = crash.split(separator: " ").firstIndex(of: "with").flatMap { Int(crash.split(separator: " ")[$0 + 1]) } ?? 0
        #expect(crashedJobs >= 1, "\(crash)")
        #expect(output.filter { $0.contains("failed over from edge PE") }.count == crashedJobs, "\(output.filter { $0.contains("·") })")
        #expect(numbers.count >= 4 && numbers[3] >= crashedJobs, "the summary counts the failovers: \(line)")
        #expect(output.contains { $0.contains("after 1 failover(s)") }, "a failed-over job completes elsewhere")
    }

    @Test func theDemoDrainsAnEdgePEAndSaysWhatItsJobsSaw() async throws {
        let (status, output) = try await runEdgepool(["demo", "--users", "16", "--duration", "60s", "--time-scale", "20", "--drain-rate", "4"], timeout: 60)
        #expect(status == 0, "\(output.suffix(10))")
        let announced = try #require(output.first { $0.contains("drains with") }, "\(output.suffix(20))")
        let jobs = announced.split(separator: " ").firstIndex(of: "with").flatMap { Int(announced.split(separator: " ")[$0 + 1]) } ?? 0
        let summary = try #require(output.first { $0.contains("drain of edge PE") }, "\(output.suffix(10))")
        let afterName = summary.split(separator: ":", maxSplits: 1).last ?? ""   // the PE's hex identifier has digits too
        let numbers = afterName.split(whereSeparator: { !$0.isNumber && $0 != "." }).compactMap { Double($0) }
        // "drain of edge PE $…: M job(s) moved in T s (R/s set); the users saw F failover(s) from it; C completed elsewhere…"
        #expect(jobs >= 1 && numbers.count >= 5, "\(announced) / \(summary)")
        if numbers.count >= 5 {
            let (moved, seconds, failedOver) = (Int(numbers[0]), numbers[1], Int(numbers[3]))
            #expect(moved >= 1 && moved <= jobs, "the PE moved its jobs: \(summary)")
            #expect(failedOver == moved, "every moved job failed over to another PE, none lost: \(summary)")
            #expect(seconds >= Double(moved - 1) / 4 - 0.2, "not faster than the set rate: \(summary)")
        }
        #expect(output.contains { $0.contains("moved jobs: handling time") }, "\(output.suffix(6))")
    }

    @Test func aLiveSweepWithAProcessPerComponentWritesItsReport() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgepool-offload-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (status, output) = try await runEdgepool(["offload", "--users", "4", "--duration", "60s", "--repetitions", "1",
                                                      "--time-scale", "20", "--out", directory.path], timeout: 120)
        #expect(status == 0, "\(output.suffix(10))")
        let runs = try String(contentsOf: directory.appendingPathComponent("runs.csv"), encoding: .utf8).split(separator: "\n")
        #expect(runs.count == 2, "a header and one run: \(runs)")
        let fields = runs[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let (submitted, completed, inFlight) = (Int(fields[2]) ?? -1, Int(fields[3]) ?? -1, Int(fields[4]) ?? -1)
        #expect(completed > 0 && submitted == completed + inFlight, "\(runs[1])")
        let summary = try String(contentsOf: directory.appendingPathComponent("summary.md"), encoding: .utf8)
        #expect(summary.contains("a process per registrar, PE and the users") && summary.contains("time scale 20"))
        for plot in ["utilization.svg", "times.svg", "speed.svg"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(plot).path))
        }
    }
}
