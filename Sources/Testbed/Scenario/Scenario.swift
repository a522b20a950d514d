/// A testbed experiment: a topology, traffic, a timeline of link events, and what to record.
///
/// ```
/// scenario isp-failover
/// topology two-isp.topo              # relative to the scenario file
/// duration 100s
/// record client:wan1 client:wan2 server:wan1 server:wan2 every 500ms
/// traffic bulk server -> client:10.81.2.1 mptcp
/// traffic requests server -> client:10.81.2.1 mptcp size=1000 every=100ms
/// traffic video server -> client:10.81.2.1 mptcp bitrate=2mbit buffer=64MiB
/// command client at 10s -- ping -c 3 10.81.2.1
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
    public var commands: [Command]
    public var events: [Event]

    public init(name: String, topologyPath: String, durationSeconds: Double, recorded: [Endpoint] = [], intervalSeconds: Double = 1,
                traffic: [Traffic] = [], commands: [Command] = [], events: [Event] = []) {
        self.name = name
        self.topologyPath = topologyPath
        self.durationSeconds = durationSeconds
        self.recorded = recorded
        self.intervalSeconds = intervalSeconds
        self.traffic = traffic
        self.commands = commands
        self.events = events
    }

    /// host:interface.
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var interface: String
        public var description: String { "\(host):\(interface)" }
        public init(host: String, interface: String) {
            self.host = host
            self.interface = interface
        }
    }

    /// One flow. The sender listens on `address` (one of its own); the receiver connects to it.
    public struct Traffic: Hashable, Sendable {
        public enum Kind: Hashable, Sendable {
            /// As many bytes as the path carries, every byte checked against a known pattern.
            case bulk
            /// The receiver sends a small request every `intervalSeconds` and waits for a
            /// response of `responseBytes` (checked); latency per request.
            case requests(responseBytes: Int, intervalSeconds: Double)
            /// A live RTMP stream: ffmpeg encodes a generated test pattern at `bitsPerSecond` and
            /// serves it; the receiver plays it into a viewer model with a playback buffer of
            /// `bufferBytes` that starts after `prerollSeconds` of media.
            case video(bitsPerSecond: UInt64, bufferBytes: Int, prerollSeconds: Double)

            public var name: String {
                switch self {
                case .bulk: "bulk"
                case .requests: "requests"
                case .video: "video"
                }
            }
        }

        /// How the bytes travel between the two hosts.
        public enum Transport: String, Hashable, Sendable, CaseIterable {
            /// MPTCP end to end.
            case mptcp
            /// Plain TCP end to end (one path).
            case tcp
            /// Plain TCP between each end and its gateway (an entry on the receiver's host, an
            /// exit on the sender's), MPTCP between EdgePool's gateway pair.
            case gateway
        }

        public var kind: Kind
        /// The host that sends (and listens).
        public var sender: String
        /// The host that receives (and connects).
        public var receiver: String
        /// The sender's address the receiver connects to (IPv4 or IPv6).
        public var address: String
        public var transport: Transport
        public var line: Int

        public init(kind: Kind, sender: String, receiver: String, address: String, transport: Transport, line: Int = 0) {
            self.kind = kind
            self.sender = sender
            self.receiver = receiver
            self.address = address
            self.transport = transport
            self.line = line
        }

        public var mptcp: Bool { transport == .mptcp }
        public var throughGateway: Bool { transport == .gateway }
    }

    /// A program of the user's choice, run on a host at a time; still running at the end, it
    /// gets SIGTERM. Its output and exit status go into the report.
    public struct Command: Hashable, Sendable {
        public var host: String
        public var atSeconds: Double
        public var arguments: [String]
        public var line: Int
        public init(host: String, atSeconds: Double, arguments: [String], line: Int = 0) {
            self.host = host
            self.atSeconds = atSeconds
            self.arguments = arguments
            self.line = line
        }
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
        public init(atSeconds: Double, action: Action, endpoint: Endpoint, line: Int = 0) {
            self.atSeconds = atSeconds
            self.action = action
            self.endpoint = endpoint
            self.line = line
        }
    }

    /// Phase boundaries: the times at which something happens, with 0 and the end.
    public var phaseBoundaries: [Double] {
        Array(Set([0, durationSeconds] + events.map(\.atSeconds))).sorted()
    }
}
