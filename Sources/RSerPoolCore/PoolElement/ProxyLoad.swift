import RSerPoolWire

/// Where a proxy PE reads its legacy server's load — for the Least-Used policies, which
/// send each new session to the PE with the lowest load — and how a reading becomes the
/// policy's load value. Pure: the parsing of what was read, no sockets, no files.
public enum ProxyLoadSource: Sendable, Hashable, CustomStringConvertible {
    /// The server's established TCP connections, counted on this host (the proxy PE beside
    /// its server: /proc/net/tcp and tcp6); `full` connections are 100 %.
    case connections(full: Int)
    /// A number fetched over HTTP (`http://HOST:PORT/PATH`): the sum of a Prometheus metric's
    /// samples (`metric`, any labels), or with no metric the whole body as one number;
    /// `full` is 100 %.
    case http(host: String, port: Int, path: String, metric: String?, full: Double)

    public var description: String {
        switch self {
        case .connections(let full): "established connections / \(full)"
        case .http(let host, let port, let path, let metric, let full):
            "\(metric ?? "the body") at http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path) / \(full)"
        }
    }

    /// Parses `http://HOST[:PORT][/PATH]` (HOST may be an IPv6 literal in brackets; PORT 80
    /// when absent, PATH "/"). Nil for anything else (https is not offered: the metrics
    /// endpoint is expected on the server's host or a trusted network).
    public static func http(url: String, metric: String?, full: Double) -> ProxyLoadSource? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard path.isEmpty || HTTPHealthCheck.isValidPath(String(path)) else { return nil }
        var host: Substring
        var port = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let number = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = number
        } else {
            host = authority
        }
        guard !host.isEmpty, (1...65_535).contains(port), full > 0 else { return nil }
        if let metric, !ProxyLoad.isValidMetricName(metric) { return nil }
        return .http(host: String(host), port: port, path: path.isEmpty ? "/" : String(path), metric: metric, full: full)
    }
}

/// The readings behind ``ProxyLoadSource``.
public enum ProxyLoad {
    /// Bytes of an HTTP answer read at most (a node exporter's /metrics is about 100 KB).
    public static let maximumResponseBytes = 4 * 1024 * 1024
    /// A new load is registered only when it differs from the registered one by at least
    /// this fraction of full load (each change is a re-registration at the registrar).
    public static let minimumChange = 0.02

    /// `value` over `full`, clamped to 0…1.
    public static func fraction(_ value: Double, full: Double) -> Double {
        guard full > 0, value.isFinite else { return 1 }
        return max(0, min(1, value / full))
    }

    /// Whether `new` should replace the registered `old` (both fractions).
    public static func isWorthUpdating(from old: Double, to new: Double) -> Bool {
        abs(new - old) >= minimumChange || (new == 0) != (old == 0)
    }

    /// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static func isValidMetricName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !isDigit(first) else { return false }
        return name.utf8.allSatisfy { isDigit($0) || isLetter($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") }
    }

    /// The sum of the samples of metric `name` in a Prometheus text exposition
    /// (`name value`, `name{labels} value [timestamp]`); nil when it has none. Comments and
    /// other metrics (`name_total` is another metric than `name`) are skipped.
    public static func prometheusValue(of name: String, in text: String) -> Double? {
        var sum: Double?
        for line in text.split(whereSeparator: \.isNewline) {   // "\r\n" is one Character
            guard line.hasPrefix(name), !line.hasPrefix("#") else { continue }
            var rest = line.dropFirst(name.count)
            if rest.first == "{" {
                // Label values may hold "}" inside quotes: skip to the brace that closes.
                var inQuotes = false, escaped = false, end: Substring.Index?
                for index in rest.indices.dropFirst() {
                    let character = rest[index]
                    if escaped { escaped = false; continue }
                    if character == "\\" { escaped = true } else if character == "\"" { inQuotes.toggle() } else if character == "}" && !inQuotes {
                        end = index
                        break
                    }
                }
                guard let end else { continue }
                rest = rest[rest.index(after: end)...]
            }
            guard rest.first == " " || rest.first == "\t" else { continue }   // a longer name
            guard let field = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).first, let value = Double(field), value.isFinite else { continue }
            sum = (sum ?? 0) + value
        }
        return sum
    }

    /// A body that is one number ("42", "0.5\n").
    public static func plainValue(_ text: String) -> Double? {
        Double(text.trimmingWhitespace()).flatMap { $0.isFinite ? $0 : nil }
    }

    /// Established TCP connections whose local end is `port` on `address` (any local address
    /// when `address` is nil or unspecified), from the text of /proc/net/tcp or tcp6: a
    /// header line, then one socket per line, `sl local_address rem_address st …`, addresses
    /// as hexadecimal 32-bit words in host (little-endian) order and the port in hex; state
    /// 01 is ESTABLISHED. An IPv4 server's connections in tcp6 appear as ::ffff:a.b.c.d.
    public static func establishedConnections(in table: String, port: Int, address: IPAddress?) -> Int {
        let wanted = address.flatMap { $0.isUnspecified ? nil : $0.unmappedIPv4 }
        var count = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, fields[3] == "01" else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, Int(local[1], radix: 16) == port else { continue }
            if let wanted {
                guard let found = decodeProcAddress(local[0]), found.unmappedIPv4 == wanted else { continue }
            }
            count += 1
        }
        return count
    }

    /// /proc/net/tcp's address: 8 or 32 hex digits, each 32-bit word little-endian.
    static func decodeProcAddress(_ hex: Substring) -> IPAddress? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let end = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<end], radix: 16) else { return nil }
            bytes += withUnsafeBytes(of: word.littleEndian) { Array($0) }
            index = end
        }
        return IPAddress(bytes: bytes)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var text = self[...]
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
