import Gateway
import Testing

@Suite struct TelemetryTests {
    typealias Key = SubflowTracker.Key

    @Test func trackerCountsSubflowsLossAndBytes() {
        let initial = Key(local: "10.0.1.1:40000", remote: "10.0.9.1:443")
        let second = Key(local: "10.0.2.1:40001", remote: "10.0.9.1:443")
        var tracker = SubflowTracker(initial: initial)
        tracker.observe([.init(key: initial, bytesAcked: 100, bytesReceived: 1000)])
        tracker.observe([.init(key: initial, bytesAcked: 200, bytesReceived: 5000), .init(key: second, bytesAcked: 0, bytesReceived: 4000)])
        #expect(!tracker.carriedDataAfterLoss)
        tracker.observe([.init(key: second, bytesAcked: 0, bytesReceived: 4000)])   // the first path is gone
        #expect(tracker.lost == 1)
        #expect(!tracker.carriedDataAfterLoss)
        tracker.observe([.init(key: second, bytesAcked: 10, bytesReceived: 9000)])
        #expect(tracker.carriedDataAfterLoss)
        #expect(tracker.maximumOpen == 2)
        #expect(tracker.seen == 2)
        let subflows = tracker.subflows
        #expect(subflows.map(\.initial) == [true, false])
        #expect(subflows.map(\.open) == [false, true])
        #expect(subflows[0].bytesReceived == 5000 && subflows[1].bytesReceived == 9000)
    }

    @Test func aSubflowInRepeatedTimeoutsCountsAsLostOnce() {
        let initial = Key(local: "10.0.1.1:40000", remote: "10.0.9.1:443")
        let second = Key(local: "10.0.2.1:40001", remote: "10.0.9.1:443")
        var tracker = SubflowTracker(initial: initial)
        tracker.observe([.init(key: initial, bytesAcked: 100, bytesReceived: 0), .init(key: second, bytesAcked: 100, bytesReceived: 0)])
        tracker.observe([.init(key: initial, bytesAcked: 100, bytesReceived: 0, failing: true), .init(key: second, bytesAcked: 500, bytesReceived: 0)])
        tracker.observe([.init(key: initial, bytesAcked: 100, bytesReceived: 0, failing: true), .init(key: second, bytesAcked: 900, bytesReceived: 0)])
        #expect(tracker.lost == 1)
        #expect(tracker.carriedDataAfterLoss)
        tracker.observe([.init(key: second, bytesAcked: 1000, bytesReceived: 0)])   // and then it goes away
        #expect(tracker.lost == 1)
    }

    @Test func statisticsSummariseTheLog() {
        var mptcp = ConnectionRecord.Side(local: "a", remote: "b", transport: .mptcp)
        mptcp.subflowsMax = 2
        mptcp.subflowsLost = 1
        mptcp.bytesIn = 10
        mptcp.subflows = [.init(local: "a", remote: "b", initial: true, bytesAcked: 0, bytesReceived: 300, open: false),
                          .init(local: "c", remote: "b", initial: false, bytesAcked: 0, bytesReceived: 100, open: true)]
        let tcp = ConnectionRecord.Side(local: "a", remote: "b", transport: .tcp)
        let records = [
            ConnectionRecord(id: 1, mode: "socks5", start: 0, durationSeconds: 1, destination: "x:1", user: nil, client: mptcp,
                             upstream: tcp, outcome: "ok", error: nil, survivedPathLoss: true),
            ConnectionRecord(id: 2, mode: "socks5", start: 0, durationSeconds: 3, destination: "x:1", user: nil, client: tcp,
                             upstream: nil, outcome: "refused", error: "denied", survivedPathLoss: false),
        ]
        let statistics = GatewayStatistics(records)
        #expect(statistics.connections == 2)
        #expect(statistics.clientTransport == ["mptcp": 1, "tcp": 1])
        #expect(statistics.subflowCount == ["2": 1])
        #expect(statistics.subflowBytes == 400 && statistics.additionalSubflowBytes == 100)
        #expect(statistics.survivedPathLoss == 1 && statistics.connectionsWithSubflowLoss == 1)
        #expect(statistics.report.contains("25.0 % of 400 bytes"))
        #expect(!statistics.report.contains("UDP"))

        // A UDP association: its datagrams are summed and reported on a line of their own.
        var udp = ConnectionRecord.UDPAssociation(relay: "127.0.0.1:5000")
        udp.datagramsFromClient = 3
        udp.bytesFromClient = 30
        udp.datagramsToClient = 2
        udp.bytesToClient = 200
        udp.datagramsDropped = 1
        let association = ConnectionRecord(id: 3, mode: "socks5", start: 0, durationSeconds: 2, destination: "udp 127.0.0.1:5000", user: nil,
                                           client: tcp, upstream: nil, outcome: "ok", error: nil, survivedPathLoss: false, udp: udp)
        let withUDP = GatewayStatistics(records + [association, association])
        #expect(withUDP.udpAssociations == 2 && withUDP.udpDatagramsFromClients == 6 && withUDP.udpBytesToClients == 400)
        #expect(withUDP.report.contains("UDP associations: 2; datagrams from clients: 6 (60 bytes), to clients: 4 (400 bytes), dropped: 2"))
    }
}
