import PathManager
import Foundation
import RSerPoolWire

/// Reads a topology file: one declaration per line, `#` starts a comment.
///
/// ```
/// topology two-isp
/// host client cc=bbr mptcp-subflows=2 mptcp-add-addr=2
/// host isp1 forward
/// host client pm=edgepool          (EdgePool's path manager runs the host's MPTCP paths)
/// link client:wan1=10.1.1.1/24 isp1:c=10.1.1.2/24 rate=20mbit/10mbit queue=100
/// route client default via 10.1.1.2 dev wan1
/// route client 0.0.0.0/0 via 10.1.1.2 dev wan1 from 10.1.1.1 table 101
/// endpoint client 10.2.1.1 dev wan2 subflow
/// ```
///
/// Link properties take one value for both directions or `A→B/B→A`: `rate` (bit, kbit,
/// mbit, gbit), `delay` and `jitter` (us, ms, s), `loss` (percent), `queue` (packets).
/// Every error names its line; nothing is created from a file with an error.
public enum TopologyParser {
    public static let maximumHostNameLength = 12
    public static let maximumInterfaceNameLength = 15

    public static func parse(_ text: String, defaultName: String = "testbed") throws(TopologyError) -> Topology {
        var topology = Topology(name: defaultName)
        var addressLines: [IPAddress: Int] = [:]
        var interfaceLines: [String: Int] = [:]
        var pendingLinks: [(Topology.Link, Int)] = []
        var pendingRoutes: [Topology.Route] = []
        var pendingEndpoints: [Topology.MPTCPEndpoint] = []
        var pendingPaths: [Topology.PathOptions] = []

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let content = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let keyword = words.first else { continue }
            let arguments = Array(words.dropFirst())
            switch keyword {
            case "topology":
                guard arguments.count == 1, validName(arguments[0], maximum: 20) else {
                    throw TopologyError(line: lineNumber, "topology wants one name of letters, digits and '-' (at most 20)")
                }
                topology.name = arguments[0]
            case "host":
                let host = try parseHost(arguments, line: lineNumber)
                if let existing = topology.host(host.name) {
                    throw TopologyError(line: lineNumber, "host '\(host.name)' is already declared on line \(existing.line)")
                }
                topology.hosts.append(host)
            case "link":
                let link = try parseLink(arguments, line: lineNumber)
                for end in [link.a, link.b] {
                    let key = "\(end.host):\(end.name)"
                    if let previous = interfaceLines[key] {
                        throw TopologyError(line: lineNumber, "interface \(key) is already used on line \(previous)")
                    }
                    interfaceLines[key] = lineNumber
                    for network in end.addresses {
                        if let previous = addressLines[network.address] {
                            throw TopologyError(line: lineNumber, "address \(network.address) is already used on line \(previous)")
                        }
                        addressLines[network.address] = lineNumber
                    }
                }
                pendingLinks.append((link, lineNumber))
            case "route":
                pendingRoutes.append(try parseRoute(arguments, line: lineNumber))
            case "endpoint":
                pendingEndpoints.append(try parseEndpoint(arguments, line: lineNumber))
            case "path":
                pendingPaths.append(try parsePath(arguments, line: lineNumber))
            default:
                throw TopologyError(line: lineNumber, "unknown declaration '\(keyword)' (expected topology, host, link, route, endpoint or path)")
            }
        }
        // Hosts may be declared after the lines that use them; check names now.
        func requireHost(_ name: String, line: Int) throws(TopologyError) {
            guard topology.host(name) != nil else {
                let known = topology.hosts.map(\.name).joined(separator: ", ")
                throw TopologyError(line: line, "unknown host '\(name)' (declared hosts: \(known.isEmpty ? "none" : known))")
            }
        }
        for (link, line) in pendingLinks {
            try requireHost(link.a.host, line: line)
            try requireHost(link.b.host, line: line)
        }
        for route in pendingRoutes {
            try requireHost(route.host, line: route.line)
            if let device = route.device, interfaceLines["\(route.host):\(device)"] == nil {
                throw TopologyError(line: route.line, "host '\(route.host)' has no interface '\(device)'")
            }
        }
        for endpoint in pendingEndpoints {
            try requireHost(endpoint.host, line: endpoint.line)
            guard interfaceLines["\(endpoint.host):\(endpoint.device)"] != nil else {
                throw TopologyError(line: endpoint.line, "host '\(endpoint.host)' has no interface '\(endpoint.device)'")
            }
        }
        for path in pendingPaths {
            try requireHost(path.host, line: path.line)
            guard interfaceLines["\(path.host):\(path.interface)"] != nil else {
                throw TopologyError(line: path.line, "host '\(path.host)' has no interface '\(path.interface)'")
            }
            guard topology.host(path.host)?.pathManager == .edgepool else {
                throw TopologyError(line: path.line, "path lines are for hosts with pm=edgepool; '\(path.host)' uses the kernel's path manager")
            }
            if let previous = pendingPaths.first(where: { $0.host == path.host && $0.interface == path.interface && $0.line < path.line }) {
                throw TopologyError(line: path.line, "\(path.host):\(path.interface) already has a path line (line \(previous.line))")
            }
        }
        if topology.hosts.isEmpty { throw TopologyError(line: 1, "no hosts declared") }
        topology.links = pendingLinks.map(\.0)
        topology.routes = pendingRoutes
        topology.mptcpEndpoints = pendingEndpoints
        topology.paths = pendingPaths
        return topology
    }

    static func validName(_ text: String, maximum: Int) -> Bool {
        !text.isEmpty && text.count <= maximum && text.first != "-"
            && text.unicodeScalars.allSatisfy { CharacterSet.lowercaseLetters.contains($0) && $0.isASCII || ("0"..."9").contains($0) || $0 == "-" }
    }

    private static func parseHost(_ arguments: [String], line: Int) throws(TopologyError) -> Topology.Host {
        guard let name = arguments.first, validName(name, maximum: maximumHostNameLength) else {
            throw TopologyError(line: line, "host wants a name of lower-case letters, digits and '-' (at most \(maximumHostNameLength))")
        }
        var host = Topology.Host(name: name, line: line)
        for option in arguments.dropFirst() {
            let (key, value) = split(option)
            switch (key, value) {
            case ("cc", let value?):
                guard ["cubic", "reno", "bbr", "bic", "htcp", "vegas", "westwood", "illinois", "dctcp"].contains(value) else {
                    throw TopologyError(line: line, "congestion control '\(value)' is not one Linux has (cubic, reno, bbr, …)")
                }
                host.congestionControl = value
            case ("forward", nil):
                host.forwarding = true
            case ("mptcp-subflows", let value?):
                guard let count = Int(value), (0...8).contains(count) else { throw TopologyError(line: line, "mptcp-subflows must be 0…8") }
                host.mptcpSubflows = count
            case ("mptcp-add-addr", let value?):
                guard let count = Int(value), (0...8).contains(count) else { throw TopologyError(line: line, "mptcp-add-addr must be 0…8") }
                host.mptcpAddAddrAccepted = count
            case ("pm", let value?):
                guard let manager = Topology.Host.PathManager(rawValue: value) else {
                    throw TopologyError(line: line, "pm must be kernel or edgepool, not '\(value)'")
                }
                host.pathManager = manager
            case ("pm-first-subflow", let value?):
                guard value == "keep" || value == "replace" else { throw TopologyError(line: line, "pm-first-subflow must be keep or replace, not '\(value)'") }
                host.replacesFirstSubflow = value == "replace"
            default:
                throw TopologyError(line: line, "unknown host option '\(option)' (cc=, forward, mptcp-subflows=, mptcp-add-addr=, pm=, pm-first-subflow=)")
            }
        }
        return host
    }

    private static func parseInterface(_ text: String, line: Int) throws(TopologyError) -> Topology.Interface {
        // host:interface=address[,address]
        let parts = text.split(separator: "=", maxSplits: 1)
        let names = parts[0].split(separator: ":")
        guard names.count == 2 else { throw TopologyError(line: line, "'\(text)': a link end is host:interface=address[,address]") }
        let host = String(names[0]), interface = String(names[1])
        guard validName(interface, maximum: maximumInterfaceNameLength) else {
            throw TopologyError(line: line, "interface name '\(interface)' must be lower-case letters, digits and '-', at most \(maximumInterfaceNameLength)")
        }
        var addresses: [IPNetwork] = []
        if parts.count == 2 {
            for item in parts[1].split(separator: ",") {
                guard item.contains("/"), let network = IPNetwork(item) else {
                    throw TopologyError(line: line, "'\(item)' is not an address with a prefix length (10.0.0.1/24, fd00::1/64)")
                }
                addresses.append(network)
            }
        }
        return Topology.Interface(host: host, name: interface, addresses: addresses)
    }

    private static func parseLink(_ arguments: [String], line: Int) throws(TopologyError) -> Topology.Link {
        guard arguments.count >= 2 else { throw TopologyError(line: line, "link wants two ends: host:if=address host:if=address [options]") }
        let a = try parseInterface(arguments[0], line: line)
        let b = try parseInterface(arguments[1], line: line)
        guard a.host != b.host else { throw TopologyError(line: line, "a link from host '\(a.host)' to itself") }
        var forward = Topology.Shaping(), backward = Topology.Shaping()
        for option in arguments.dropFirst(2) {
            let (key, value) = split(option)
            guard let value else { throw TopologyError(line: line, "link option '\(option)' needs a value") }
            let values = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard values.count == 1 || values.count == 2 else { throw TopologyError(line: line, "'\(option)': one value, or A→B/B→A") }
            for (direction, text) in [(0, values[0]), (1, values.last!)] {
                func set(_ body: (inout Topology.Shaping) -> Void) {
                    if direction == 0 { body(&forward) } else { body(&backward) }
                }
                switch key {
                case "rate":
                    guard let rate = parseRate(text) else { throw TopologyError(line: line, "rate '\(text)' is not a rate (e.g. 20mbit, 512kbit, 1gbit)") }
                    set { $0.rateBitsPerSecond = rate }
                case "delay", "jitter":
                    guard let milliseconds = parseMilliseconds(text) else { throw TopologyError(line: line, "\(key) '\(text)' is not a duration (e.g. 20ms)") }
                    set { if key == "delay" { $0.delayMilliseconds = milliseconds } else { $0.jitterMilliseconds = milliseconds } }
                case "loss":
                    guard text.hasSuffix("%"), let percent = Double(text.dropLast()), (0...100).contains(percent) else {
                        throw TopologyError(line: line, "loss '\(text)' is not a percentage (e.g. 1%)")
                    }
                    set { $0.loss = percent / 100 }
                case "queue":
                    guard let packets = Int(text), (1...100_000).contains(packets) else { throw TopologyError(line: line, "queue '\(text)' is not a packet count (1…100000)") }
                    set { $0.queuePackets = packets }
                default:
                    throw TopologyError(line: line, "unknown link option '\(key)' (rate, delay, jitter, loss, queue)")
                }
            }
        }
        return Topology.Link(a: a, b: b, forward: forward, backward: backward, line: line)
    }

    private static func parseRoute(_ arguments: [String], line: Int) throws(TopologyError) -> Topology.Route {
        guard arguments.count >= 2 else { throw TopologyError(line: line, "route wants: route HOST DEST|default [via GW] [dev IF] [from SRC] [table N]") }
        var route = Topology.Route(host: arguments[0], destination: nil, gateway: nil, device: nil, source: nil, table: nil, line: line)
        if arguments[1] != "default" {
            guard let network = IPNetwork(Substring(arguments[1])) else { throw TopologyError(line: line, "'\(arguments[1])' is not a destination (CIDR or default)") }
            route.destination = network
        }
        var rest = arguments.dropFirst(2).makeIterator()
        while let word = rest.next() {
            guard let value = rest.next() else { throw TopologyError(line: line, "'\(word)' needs a value") }
            switch word {
            case "via":
                guard let ip = IPAddress(value) else { throw TopologyError(line: line, "gateway '\(value)' is not an address") }
                route.gateway = ip
            case "dev": route.device = value
            case "from":
                guard let ip = IPAddress(value) else { throw TopologyError(line: line, "source '\(value)' is not an address") }
                route.source = ip
            case "table":
                guard let table = Int(value), (1...252).contains(table) else { throw TopologyError(line: line, "table must be 1…252") }
                route.table = table
            default:
                throw TopologyError(line: line, "unknown route word '\(word)' (via, dev, from, table)")
            }
        }
        if route.source != nil && route.table == nil { throw TopologyError(line: line, "a source route ('from') needs its own table") }
        if route.gateway == nil && route.device == nil { throw TopologyError(line: line, "a route needs 'via' or 'dev'") }
        return route
    }

    private static func parseEndpoint(_ arguments: [String], line: Int) throws(TopologyError) -> Topology.MPTCPEndpoint {
        guard arguments.count >= 4, arguments[2] == "dev", let address = IPAddress(arguments[1]) else {
            throw TopologyError(line: line, "endpoint wants: endpoint HOST ADDRESS dev IF [subflow] [signal] [backup] [fullmesh] [port=P]")
        }
        var flags: [String] = []
        var port: UInt16?
        for flag in arguments.dropFirst(4) {
            if flag.hasPrefix("port=") {
                guard let number = UInt16(flag.dropFirst(5)), number > 0 else { throw TopologyError(line: line, "'\(flag)' is not a port (1…65535)") }
                port = number
            } else if ["subflow", "signal", "backup", "fullmesh"].contains(flag) {
                flags.append(flag)
            } else {
                throw TopologyError(line: line, "unknown endpoint flag '\(flag)' (subflow, signal, backup, fullmesh, port=P)")
            }
        }
        return Topology.MPTCPEndpoint(host: arguments[0], address: address, device: arguments[3], flags: flags, port: port, line: line)
    }

    private static func parsePath(_ arguments: [String], line: Int) throws(TopologyError) -> Topology.PathOptions {
        let usage = "path wants: path HOST:IF [probe=ADDR:PORT] [backup]"
        guard arguments.count >= 2 else { throw TopologyError(line: line, usage) }
        let names = arguments[0].split(separator: ":")
        guard names.count == 2 else { throw TopologyError(line: line, usage) }
        var path = Topology.PathOptions(host: String(names[0]), interface: String(names[1]), line: line)
        for option in arguments.dropFirst() {
            switch split(option) {
            case ("backup", nil):
                path.backup = true
            case ("probe", let target?):
                // ADDR:PORT or [V6]:PORT
                guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]), port > 0,
                      let address = IPAddress(String(target[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) else {
                    throw TopologyError(line: line, "probe= wants ADDR:PORT or [V6]:PORT, not '\(target)'")
                }
                path.probe = (address, port)
            default:
                throw TopologyError(line: line, "unknown path option '\(option)' (probe=ADDR:PORT, backup)")
            }
        }
        return path
    }

    private static func split(_ option: String) -> (String, String?) {
        let parts = option.split(separator: "=", maxSplits: 1)
        return (String(parts[0]), parts.count == 2 ? String(parts[1]) : nil)
    }

    /// "20mbit", "512kbit", "1.5gbit", "64000bit" → bits per second.
    public static func parseRate(_ text: String) -> UInt64? { TokenBucketShaping.parseRate(text) }

    /// "20ms", "500us", "1s" → milliseconds.
    public static func parseMilliseconds(_ text: String) -> Double? {
        let lower = text.lowercased()
        for (suffix, scale) in [("ms", 1.0), ("us", 0.001), ("s", 1000.0)] where lower.hasSuffix(suffix) {
            guard let value = Double(lower.dropLast(suffix.count)), value >= 0, value <= 60_000 else { return nil }
            return value * scale
        }
        return nil
    }
}
