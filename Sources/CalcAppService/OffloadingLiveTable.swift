import CalcApp
import Foundation

/// The live table of `edgepool demo` (the offloading scenario run live): a header naming the
/// PE groups, one row per snapshot with each group's used capacity, the requests completed
/// and their handling speed, the failovers under it, and a summary at the end.
public struct OffloadingLiveTable: Sendable {
    public var scenario: OffloadingScenario
    public var users: Int
    public var timeScale: Double

    public init(scenario: OffloadingScenario, users: Int, timeScale: Double) {
        self.scenario = scenario
        self.users = users
        self.timeScale = timeScale
    }

    private var groups: [String] { scenario.elements.map(\.name) }

    public var header: [String] {
        let elements = scenario.elements.map { "\($0.count)× \($0.name) (\(formatRate($0.capacity)), PLU +\(Int($0.increment * 100)) %, \($0.delay))" }
        return [
            "Offloading live: \(users) pool users on the device; PEs: " + elements.joined(separator: ", "),
            "time scale \(formatNumber(timeScale))×: \(scenario.sweep.duration) of scenario time in \(String(format: "%.0f", scenario.sweep.duration.seconds / timeScale)) s",
            "",
            "  scenario   " + groups.map { $0.padding(toLength: 11, withPad: " ", startingAt: 0) }.joined() + "done  handling speed",
            "  time       " + groups.map { _ in "used cap.  " }.joined(),
        ]
    }

    /// The lines of one snapshot: a row (or, for the announced crash, its line) and its events.
    public func lines(_ snapshot: OffloadingLiveSnapshot) -> [String] {
        if snapshot.elapsed < 0 {
            return snapshot.events.map { "  -- \($0): no cookies, no deregistration; its jobs fail over --" }
        }
        let cells = snapshot.utilization.map { String(format: "%5.1f %%    ", 100 * $0.value) }.joined()
        let row = String(format: "  %5.0f s    ", snapshot.elapsed) + cells
            + String(format: "%4d  %@", snapshot.completed, formatRate(snapshot.handlingSpeed) as NSString)
        return [row] + snapshot.events.map { "     · \($0)" }
    }

    public func summary(_ result: OffloadingRunResult) -> [String] {
        var lines = [
            "",
            "summary (\(users) users, \(scenario.sweep.duration)):",
            "  requests: \(result.submitted) submitted, \(result.completed) completed, \(result.inFlight) queued or in progress at the end; \(result.failovers) failover(s), \(result.rejections) rejection(s)",
            String(format: "  handling time %.2f s = queuing %.2f + start-up %.2f + processing %.2f; handling speed %@",
                   result.handlingTime, result.queuingTime, result.startupTime, result.processingTime, formatRate(result.handlingSpeed) as NSString),
        ]
        for group in groups {
            lines.append("  " + group.padding(toLength: 10, withPad: " ", startingAt: 0)
                         + String(format: " used capacity %5.1f %%, completed %d", 100 * (result.utilization[group] ?? 0), result.completedBy[group] ?? 0))
        }
        return lines + ["", "For the whole sweep: edgepool simulate (seconds), or edgepool offload (live)."]
    }
}
