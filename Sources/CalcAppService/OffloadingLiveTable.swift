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
            return snapshot.events.map { "  -- \($0) --" }
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
        if let drain = result.drain {
            let running = drain.failedOver - drain.movedCompleted
            lines.append(String(format: "  drain of %@ PE %@: %d job(s) moved in %.1f s (%@/s set); the users saw %d failover(s) from it; %d completed elsewhere%@",
                                drain.group as NSString, drain.element as NSString, drain.moved, drain.seconds, formatNumber(drain.sessionsPerSecond) as NSString,
                                drain.failedOver, drain.movedCompleted, (running > 0 ? ", \(running) still running at the end" : "") as NSString))
            if let time = drain.movedHandlingTime, let speed = drain.movedHandlingSpeed {
                var line = String(format: "  moved jobs: handling time %.2f s, speed %@", time, formatRate(speed) as NSString)
                if let otherTime = drain.otherHandlingTime, let otherSpeed = drain.otherHandlingSpeed {
                    line += String(format: "; jobs in the pool meanwhile that stayed: %.2f s, %@ (the moved ones %.0f %% of their speed)",
                                   otherTime, formatRate(otherSpeed) as NSString, 100 * speed / otherSpeed)
                }
                lines.append(line)
            }
        }
        return lines + ["", "For the whole sweep: edgepool simulate (seconds), or edgepool offload (live)."]
    }
}
