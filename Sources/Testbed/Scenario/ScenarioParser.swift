public enum ScenarioParser {
    public static func parse(_ text: String) throws(TopologyError) -> Scenario {
        var scenario = Scenario(name: "scenario", topologyPath: "", durationSeconds: 0)
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
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content
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
                scenario.traffic.append(try parseTraffic(words, line: line))
            case "command":
                // command HOST [at TIME] -- PROGRAM ARGUMENTS…
                guard let separator = words.firstIndex(of: "--"), separator + 1 < words.count,
                      separator == 2 || (separator == 4 && words[2] == "at") else {
                    throw TopologyError(line: line, "command wants: command HOST [at TIME] -- PROGRAM ARGUMENTS…")
                }
                let at = separator == 4 ? try seconds(words[3], line: line) : 0
                // The program's words again, this time with quotes honoured.
                let rawLine = String(content).replacingOccurrences(of: "\t", with: " ")
                guard let dashes = rawLine.range(of: " -- ") else { throw TopologyError(line: line, "command wants ' -- ' before the program") }
                let arguments = try ShellWords.split(String(rawLine[dashes.upperBound...]), line: line)
                guard !arguments.isEmpty else { throw TopologyError(line: line, "command has no program") }
                scenario.commands.append(Scenario.Command(host: words[1], atSeconds: at, arguments: arguments, line: line))
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
                throw TopologyError(line: line, "unknown declaration '\(keyword)' (scenario, topology, duration, record, traffic, command, at)")
            }
        }
        guard !scenario.topologyPath.isEmpty else { throw TopologyError(line: 1, "no topology given") }
        guard scenario.durationSeconds > 0 else { throw TopologyError(line: 1, "no duration given") }
        for event in scenario.events where event.atSeconds >= scenario.durationSeconds {
            throw TopologyError(line: event.line, "event at \(event.atSeconds) s is after the end (\(scenario.durationSeconds) s)")
        }
        for command in scenario.commands where command.atSeconds >= scenario.durationSeconds {
            throw TopologyError(line: command.line, "command at \(command.atSeconds) s is after the end (\(scenario.durationSeconds) s)")
        }
        scenario.events.sort { $0.atSeconds < $1.atSeconds }
        return scenario
    }

    /// Upper bound of a request/response flow's response size.
    public static let maximumResponseBytes = 16 << 20
    /// Bounds of a video flow's bit rate and playback buffer.
    public static let videoBitRates: ClosedRange<UInt64> = 100_000...50_000_000
    public static let videoBufferBytes: ClosedRange<Int> = 64 << 10...(1 << 30)

    /// traffic KIND SENDER -> RECEIVER:ADDRESS-OF-SENDER [mptcp|tcp|gateway] [key=value…]
    static func parseTraffic(_ words: [String], line: Int) throws(TopologyError) -> Scenario.Traffic {
        let usage = "traffic wants: traffic bulk|requests|video SENDER -> RECEIVER:ADDRESS-OF-SENDER [mptcp|tcp|gateway] [key=value…]"
        guard words.count >= 5, words[3] == "->" else { throw TopologyError(line: line, usage) }
        let target = words[4].split(separator: ":", maxSplits: 1)
        guard target.count == 2 else { throw TopologyError(line: line, "'\(words[4])' is not receiver:address") }
        var transport = Scenario.Traffic.Transport.mptcp
        var options: [String: String] = [:]
        for word in words.dropFirst(5) {
            if let chosen = Scenario.Traffic.Transport(rawValue: word) {
                transport = chosen
            } else if let equals = word.firstIndex(of: "=") {
                options[String(word[..<equals])] = String(word[word.index(after: equals)...])
            } else {
                throw TopologyError(line: line, "'\(word)' is neither a transport (mptcp, tcp, gateway) nor key=value")
            }
        }
        func take(_ key: String) -> String? { options.removeValue(forKey: key) }
        let kind: Scenario.Traffic.Kind
        switch words[1] {
        case "bulk":
            kind = .bulk
        case "requests":
            var size = 1000, interval = 0.1
            if let text = take("size") {
                guard let bytes = parseBytes(text), bytes >= 1, bytes <= maximumResponseBytes else {
                    throw TopologyError(line: line, "size=\(text) is not a response size from 1 byte to 16MiB")
                }
                size = bytes
            }
            if let text = take("every") {
                guard let milliseconds = TopologyParser.parseMilliseconds(text), milliseconds >= 1 else {
                    throw TopologyError(line: line, "every=\(text) is not an interval of at least 1ms")
                }
                interval = milliseconds / 1000
            }
            kind = .requests(responseBytes: size, intervalSeconds: interval)
        case "video":
            var rate: UInt64 = 2_000_000, buffer = 64 << 20, preroll = 2.0
            if let text = take("bitrate") {
                guard let bits = TopologyParser.parseRate(text), videoBitRates.contains(bits) else {
                    throw TopologyError(line: line, "bitrate=\(text) is not a rate from 100kbit to 50mbit")
                }
                rate = bits
            }
            if let text = take("buffer") {
                guard let bytes = parseBytes(text), videoBufferBytes.contains(bytes) else {
                    throw TopologyError(line: line, "buffer=\(text) is not a size from 64KiB to 1GiB")
                }
                buffer = bytes
            }
            if let text = take("preroll") {
                guard let milliseconds = TopologyParser.parseMilliseconds(text), milliseconds <= 60_000 else {
                    throw TopologyError(line: line, "preroll=\(text) is not a duration up to 60s")
                }
                preroll = milliseconds / 1000
            }
            kind = .video(bitsPerSecond: rate, bufferBytes: buffer, prerollSeconds: preroll)
        default:
            throw TopologyError(line: line, "unknown traffic '\(words[1])' (bulk, requests, video)")
        }
        if let key = options.keys.sorted().first { throw TopologyError(line: line, "\(words[1]) traffic has no option '\(key)'") }
        return Scenario.Traffic(kind: kind, sender: words[2], receiver: String(target[0]), address: String(target[1]), transport: transport, line: line)
    }

    /// "1000", "64KiB", "64MiB", "1GiB" → bytes.
    public static func parseBytes(_ text: String) -> Int? {
        for (suffix, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1), ("", 1)] where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value * Double(scale) <= Double(1 << 40) else { return nil }
            return Int(value * Double(scale))
        }
        return nil
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
        for command in scenario.commands where topology.host(command.host) == nil {
            throw TopologyError(line: command.line, "unknown host '\(command.host)'")
        }
    }
}
