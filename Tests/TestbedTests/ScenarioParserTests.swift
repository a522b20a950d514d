import Foundation
import Testbed
import Testing

@Suite struct ScenarioParserTests {
    static func shipped(_ name: String) throws -> String {
        try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Scenarios/\(name)").standardized, encoding: .utf8)
    }

    @Test(arguments: ["isp-failover.scenario", "isp-failover-gateway.scenario", "isp-blackhole.scenario", "isp-failover-video.scenario", "isp-failover-v6.scenario", "isp-failover-pm.scenario", "isp-blackhole-pm.scenario", "isp-failover-video-pm.scenario", "isp-failover-gateway-pm.scenario"])
    func theShippedScenariosParseAndFitTheirTopology(name: String) throws {
        let scenario = try ScenarioParser.parse(Self.shipped(name))
        let topologyURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Scenarios").appendingPathComponent(scenario.topologyPath).standardized
        let topology = try TopologyParser.parse(String(contentsOf: topologyURL, encoding: .utf8))
        try ScenarioParser.check(scenario, against: topology)
        #expect(scenario.phaseBoundaries.count >= 3)
        #expect(!scenario.traffic.isEmpty)
    }

    @Test func everyTrafficKindWithItsOptions() throws {
        let scenario = try ScenarioParser.parse("""
        topology t.topo
        duration 30s
        traffic bulk s -> c:10.0.0.1
        traffic requests s -> c:10.0.0.1 tcp size=64KiB every=20ms
        traffic video s -> c:fd00::1 gateway bitrate=4mbit buffer=64MiB preroll=1500ms
        command c at 2s -- sh -c 'echo "a b" > /tmp/x'   # a comment
        command s -- ss -Mti
        """)
        #expect(scenario.traffic.map(\.kind) == [.bulk, .requests(responseBytes: 65536, intervalSeconds: 0.02),
                                                 .video(bitsPerSecond: 4_000_000, bufferBytes: 64 << 20, prerollSeconds: 1.5)])
        #expect(scenario.traffic.map(\.transport) == [.mptcp, .tcp, .gateway])
        #expect(scenario.traffic[2].address == "fd00::1")
        #expect(scenario.commands.map(\.arguments) == [["sh", "-c", "echo \"a b\" > /tmp/x"], ["ss", "-Mti"]])
        #expect(scenario.commands.map(\.atSeconds) == [2, 0])
    }

    @Test func defaults() throws {
        let scenario = try ScenarioParser.parse("topology t\nduration 5s\ntraffic requests s -> c:1.2.3.4\ntraffic video s -> c:1.2.3.4")
        #expect(scenario.traffic[0].kind == .requests(responseBytes: 1000, intervalSeconds: 0.1))
        #expect(scenario.traffic[1].kind == .video(bitsPerSecond: 2_000_000, bufferBytes: 64 << 20, prerollSeconds: 2))
    }

    @Test(arguments: [
        ("traffic flood s -> c:1.2.3.4", 3, "unknown traffic 'flood'"),
        ("traffic bulk s c:1.2.3.4 tcp", 3, "traffic wants"),
        ("traffic bulk s -> c tcp", 3, "'c' is not receiver:address"),
        ("traffic bulk s -> c:1.2.3.4 udp", 3, "'udp' is neither a transport"),
        ("traffic bulk s -> c:1.2.3.4 size=10", 3, "bulk traffic has no option 'size'"),
        ("traffic requests s -> c:1.2.3.4 size=17MiB", 3, "not a response size"),
        ("traffic requests s -> c:1.2.3.4 every=0ms", 3, "at least 1ms"),
        ("traffic video s -> c:1.2.3.4 bitrate=fast", 3, "bitrate=fast is not a rate"),
        ("traffic video s -> c:1.2.3.4 buffer=1KiB", 3, "not a size from 64KiB"),
        ("command c at 2s ss", 3, "command wants"),
        ("command c at 2s -- sh -c 'unterminated", 3, "unterminated quote"),
        ("command c at 9s -- true", 3, "after the end"),
        ("at 1s explode c:x", 3, "unknown event 'explode'"),
    ])
    func badLinesAreNamed(line: String, number: Int, message: String) {
        #expect {
            _ = try ScenarioParser.parse("topology t\nduration 5s\n\(line)")
        } throws: { error in
            guard let error = error as? TopologyError else { return false }
            return error.line == number && error.message.contains(message)
        }
    }

    @Test func unknownHostsAreFoundAgainstTheTopology() throws {
        let topology = try TopologyParser.parse("host a\nhost b\nlink a:x=10.0.0.1/24 b:y=10.0.0.2/24")
        let scenario = try ScenarioParser.parse("topology t\nduration 5s\ntraffic bulk a -> b:10.0.0.1\ncommand z -- true")
        #expect(throws: TopologyError(line: 4, "unknown host 'z'")) { try ScenarioParser.check(scenario, against: topology) }
    }

    @Test func shellWords() throws {
        #expect(try ShellWords.split("a  'b c' \"d \\\"e\\\"\" f\\ g") == ["a", "b c", "d \"e\"", "f g"])
        #expect(try ShellWords.split("''") == [""])
        #expect(try ShellWords.split("   ") == [])
        #expect(throws: TopologyError.self) { try ShellWords.split("\"open") }
    }

    @Test func sizes() {
        #expect(ScenarioParser.parseBytes("64MiB") == 64 << 20)
        #expect(ScenarioParser.parseBytes("1000") == 1000)
        #expect(ScenarioParser.parseBytes("1.5KiB") == 1536)
        #expect(ScenarioParser.parseBytes("big") == nil)
        #expect(ScenarioParser.parseBytes("-1") == nil)
    }
}
