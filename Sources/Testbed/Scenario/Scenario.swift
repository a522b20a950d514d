/// A testbed experiment: a topology, traffic, a timeline of link events, and what to record.
///
/// ```
/// scenario isp-failover
/// topology two-isp.topo              # relative to the scenario file
/// duration 100s
/// record client:wan1 client:wan2 server:wan1 server:wan2 every 500ms
/// traffic bulk server -> client:10.81.2.1 mptcp
/// at 25s down client:wan1
/// at 50s up client:wan1
/// at 50s down client:wan2
/// at 75s up client:wan2
/// ```
public struct Scenario: Hashable, Sendable {
    public var name: String
    public var topologyPath: String
    public var durationSeconds: Double
    public var recorded: [Endpoint]
    public var intervalSeconds: Double
    public var traffic: [Traffic]
    public var events: [Event]

    /// host:interface.
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var interface: String
        public var description: String { "\(host):\(interface)" }
    }

    public struct Traffic: Hashable, Sendable {
        public enum Kind: String, Sendable { case bulk }
        public var kind: Kind
        /// The host that sends.
        public var sender: String
        /// The host that receives and the sender's address it connects to.
        public var receiver: String
        public var address: String
        public var mptcp: Bool
        /// Through EdgePool's gateway pair instead of end-to-end MPTCP: plain TCP between each
        /// end and its gateway (an entry on the receiver's host, an exit on the sender's),
        /// MPTCP between the gateways.
        public var throughGateway = false
        public var line: Int
    }

    public struct Event: Hashable, Sendable {
        public enum Action: Hashable, Sendable {
            case down, up
            /// The link stays up but drops everything (an emulated link), and back.
            case blackhole, restore
            /// A new rate on the interface's egress (tbf), bits per second.
            case rate(UInt64)
        }
        public var atSeconds: Double
        public var action: Action
        public var endpoint: Endpoint
        public var line: Int
    }

    /// Phase boundaries: the times at which something happens, with 0 and the end.
    public var phaseBoundaries: [Double] {
        Array(Set([0, durationSeconds] + events.map(\.atSeconds))).sorted()
    }
}

public enum ScenarioParser {
    public static func parse(_ text: String) throws(TopologyError) -> Scenario {
        var scenario = Scenario(name: "scenario", topologyPath: "", durationSeconds: 0, recorded: [], intervalSeconds: 1, traffic: [], events: [])
        func endpoint(_ text: String, line: Int) throws(TopologyError) -> Scenario.Endpoint {
            let parts = text.split(separator: ":")
            guard parts.count == 2 else { throw TopologyError(line: line, "'\(text)' is not host:interface") }
            return Scenario.Endpoint(host: String(parts[0]), interface: String(parts[1]))
        }
        func seconds(_ text: String, line: Int) throws(TopologyError) -> Double {
            guard let milliseconds = TopologyParser.parseMilliseconds(text) else { throw TopologyError(line: line, "'\(text)' is not a duration (25s, 500ms)") }
            return milliseconds / 1000
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let words = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let keyword = words.first else { continue }
            switch keyword {
            case "scenario":
                guard words.count == 2 else { throw TopologyError(line: line, "scenario wants one name") }
                scenario.name = words[1]
            case "topology":
                guard words.count == 2 else { throw TopologyError(line: line, "topology wants one file") }
                scenario.topologyPath = words[1]
            case "duration":
                guard words.count == 2 else { throw TopologyError(line: line, "duration wants one value") }
                scenario.durationSeconds = try seconds(words[1], line: line)
            case "record":
                guard let every = words.firstIndex(of: "every"), every + 1 < words.count, every > 1 else {
                    throw TopologyError(line: line, "record wants: record host:if … every 500ms")
                }
                for word in words[1..<every] { scenario.recorded.append(try endpoint(word, line: line)) }
                scenario.intervalSeconds = try seconds(words[every + 1], line: line)
                guard scenario.intervalSeconds >= 0.05 else { throw TopologyError(line: line, "record at most every 50ms") }
            case "traffic":
                // traffic bulk SENDER -> RECEIVER:SENDER-ADDRESS [mptcp|tcp|gateway]
                guard words.count >= 5, words[1] == "bulk", words[3] == "->" else {
                    throw TopologyError(line: line, "traffic wants: traffic bulk SENDER -> RECEIVER:ADDRESS-OF-SENDER [mptcp|tcp|gateway]")
                }
                let target = words[4].split(separator: ":", maxSplits: 1)
                guard target.count == 2 else { throw TopologyError(line: line, "'\(words[4])' is not receiver:address") }
                let transport = words.count > 5 ? words[5] : "mptcp"
                guard ["mptcp", "tcp", "gateway"].contains(transport) else { throw TopologyError(line: line, "transport must be mptcp, tcp or gateway") }
                var traffic = Scenario.Traffic(kind: .bulk, sender: words[2], receiver: String(target[0]), address: String(target[1]),
                                               mptcp: transport == "mptcp", line: line)
                traffic.throughGateway = transport == "gateway"
                scenario.traffic.append(traffic)
            case "at":
                guard words.count >= 4 else { throw TopologyError(line: line, "at wants: at TIME down|up|blackhole|restore|rate=R host:if") }
                let time = try seconds(words[1], line: line)
                let action: Scenario.Event.Action
                switch words[2] {
                case "down": action = .down
                case "up": action = .up
                case "blackhole": action = .blackhole
                case "restore": action = .restore
                case let word where word.hasPrefix("rate="):
                    guard let rate = TopologyParser.parseRate(String(word.dropFirst(5))) else { throw TopologyError(line: line, "'\(word)' is not a rate") }
                    action = .rate(rate)
                default:
                    throw TopologyError(line: line, "unknown event '\(words[2])' (down, up, blackhole, restore, rate=R)")
                }
                scenario.events.append(Scenario.Event(atSeconds: time, action: action, endpoint: try endpoint(words[3], line: line), line: line))
            default:
                throw TopologyError(line: line, "unknown declaration '\(keyword)' (scenario, topology, duration, record, traffic, at)")
            }
        }
        guard !scenario.topologyPath.isEmpty else { throw TopologyError(line: 1, "no topology given") }
        guard scenario.durationSeconds > 0 else { throw TopologyError(line: 1, "no duration given") }
        for event in scenario.events where event.atSeconds >= scenario.durationSeconds {
            throw TopologyError(line: event.line, "event at \(event.atSeconds) s is after the end (\(scenario.durationSeconds) s)")
        }
        scenario.events.sort { $0.atSeconds < $1.atSeconds }
        return scenario
    }

    /// Checks the scenario's hosts and interfaces against its topology.
    public static func check(_ scenario: Scenario, against topology: Topology) throws(TopologyError) {
        let interfaces = Set(topology.links.flatMap { [Scenario.Endpoint(host: $0.a.host, interface: $0.a.name), Scenario.Endpoint(host: $0.b.host, interface: $0.b.name)] })
        for endpoint in scenario.recorded where !interfaces.contains(endpoint) {
            throw TopologyError(line: 0, "recorded interface \(endpoint) is not in topology \(topology.name)")
        }
        for event in scenario.events where !interfaces.contains(event.endpoint) {
            throw TopologyError(line: event.line, "interface \(event.endpoint) is not in topology \(topology.name)")
        }
        for traffic in scenario.traffic {
            for host in [traffic.sender, traffic.receiver] where topology.host(host) == nil {
                throw TopologyError(line: traffic.line, "unknown host '\(host)'")
            }
        }
    }
}
