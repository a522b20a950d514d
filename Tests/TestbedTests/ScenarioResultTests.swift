import Testbed
import Testing

/// A flow's outcome read from the literal lines the traffic generators print
/// (TestbedRunner's `TestbedTraffic`), and the summary built from it.
@Suite struct ScenarioResultTests {
    static let scenario: Scenario = {
        try! ScenarioParser.parse("""
        topology t.topo
        duration 10s
        traffic bulk s -> c:10.0.0.1
        at 5s down c:eth1
        """)
    }()

    @Test func aBulkFlowFromItsReceiverAndSenderLines() {
        let flow = ScenarioResult.Flow(name: "bulk", kind: .bulk, receiverLines: [
            "edgepool traffic ready port=5201",
            "progress 0.100 0",
            "progress 0.200 125000",
            "progress 0.300 250000",
            "received 250000 bytes, mismatched 3",
        ], senderLines: ["edgepool traffic ready port=5201", "sent 260000 bytes"])
        #expect(flow.progress.map(\.0) == [0.1, 0.2, 0.3])
        #expect(flow.progress.map(\.1) == [0, 125_000, 250_000])
        #expect(flow.received == 250_000)
        #expect(flow.mismatched == 3)
        #expect(flow.sent == 260_000)
        #expect(flow.lost == 10_000)
        #expect(flow.undelivered == nil)
        #expect(flow.error == nil)
    }

    @Test func aReceiverThatStoppedWaitingCountsUndeliveredNotLost() {
        let flow = ScenarioResult.Flow(name: "bulk", kind: .bulk, receiverLines: [
            "progress 1.000 1000",
            "stopped: no end of stream 30.0 s after the run",
            "received 1000 bytes, mismatched 0",
        ], senderLines: ["sent 5000 bytes (connection ended: errno 104)"])
        #expect(flow.stoppedEarly)
        #expect(flow.lost == nil)
        #expect(flow.undelivered == 4000)
        #expect(flow.error?.hasPrefix("stopped:") == true)
    }

    @Test func requestLatenciesAndCounts() {
        let flow = ScenarioResult.Flow(name: "requests", kind: .requests(responseBytes: 1000, intervalSeconds: 0.1), receiverLines: [
            "progress 0.000 0",
            "request 0.100 1.250",
            "progress 0.101 1000",
            "request 0.200 3.500",
            "progress 0.204 2000",
            "error: connection ended waiting for response 2",
            "requests 3 answered 2 mismatched 0",
        ], senderLines: ["answered 2 requests, 2000 bytes"])
        #expect(flow.latencies.map(\.1) == [1.25, 3.5])
        #expect(flow.requestsIssued == 3)
        #expect(flow.received == 2000)
        #expect(flow.sent == 2000)
        #expect(flow.error == "error: connection ended waiting for response 2")
    }

    @Test func aVideoFlowWithTheViewersStalls() {
        let flow = ScenarioResult.Flow(name: "video", kind: .video(bitsPerSecond: 2_000_000, bufferBytes: 64 << 20, prerollSeconds: 2), receiverLines: [
            "progress 0.500 4096",
            "stall 12.000 0.750",
            "stall 30.250 1.500",
            "viewer frames 1500 video-frames 750 stalls 2 stalled 2.250 peak-buffer 900000 overflow 0 started 2.100 received 7000000",
        ], senderLines: ["sent frames 760 bytes 7100000 speed 0.98 status 0"])
        #expect(flow.framesReceived == 750)
        #expect(flow.framesSent == 760)
        #expect(flow.viewerStalls.count == 2)
        #expect(flow.viewerStalls.map(\.seconds) == [0.75, 1.5])
        #expect(flow.viewerStartedAt == 2.1)
        #expect(flow.received == 7_000_000)
        #expect(flow.sent == 7_100_000)
        #expect(flow.peakBufferBytes == 900_000)
        #expect(flow.encoderSpeed == 0.98)
    }

    @Test func theSummaryNamesTheIncompleteRunTheNotesAndEachFlow() {
        var result = ScenarioResult(scenario: Self.scenario)
        result.incomplete = "interrupted"
        result.notes = ["the sender of flow 1 exited early"]
        result.flows = [ScenarioResult.Flow(name: "flow 0", kind: .bulk, receiverLines: ["progress 0.000 0", "progress 2.000 2500000", "received 2500000 bytes, mismatched 0"],
                                            senderLines: ["sent 2500000 bytes"])]
        let summary = result.summary
        #expect(summary.contains("**INCOMPLETE**: interrupted"))
        #expect(summary.contains("Note: the sender of flow 1 exited early"))
        #expect(summary.contains("**flow 0**: received 2500000 bytes in 2.0 s (10.0 Mbit/s)"), "\(summary)")
        #expect(summary.contains("lost 0, corrupted 0"))
    }
}
