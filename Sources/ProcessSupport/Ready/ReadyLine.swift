/// The one line on standard output with which every EdgePool daemon says it is ready to
/// serve — and the one parser for it, used by the runners, the benchmarks and the tests.
///
///     edgepool registrar ready id=$0a0b0c0d asap=127.0.0.1:3863 transport=mptcp enrp=127.0.0.1:9901
///     edgepool gateway ready mode=socks listen=127.0.0.1:1080 transport=tcp upstream=tcp
///
/// The words are `edgepool`, the daemon's name, `ready`, then `key=value` fields in a fixed
/// order. Several addresses are joined by commas; a value holding spaces, quotes or
/// backslashes is written in double quotes with `\"` and `\\` escapes. The line is printed
/// once the daemon's listeners are bound (ports chosen by the kernel are the real ones), and
/// it is flushed at once.
public struct ReadyLine: Equatable, Sendable, CustomStringConvertible {
    /// `registrar`, `pe`, `gateway`, `paths`, `calcapp-pe`, …
    public var daemon: String
    /// The fields in their order.
    public var fields: [Field]

    public struct Field: Equatable, Sendable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    public init(daemon: String, _ fields: [Field]) {
        self.daemon = daemon
        self.fields = fields
    }

    /// A line from key–value pairs; nil values are left out.
    public init(daemon: String, _ pairs: KeyValuePairs<String, String?>) {
        self.init(daemon: daemon, pairs.compactMap { key, value in value.map { Field(key, $0) } })
    }

    /// The first value of `key`.
    public subscript(key: String) -> String? { fields.first { $0.key == key }?.value }

    /// The comma-separated items of `key` (addresses), or none.
    public func list(_ key: String) -> [String] {
        self[key].map { $0.split(separator: ",").map(String.init) } ?? []
    }

    /// The port of the first address of `key` ("127.0.0.1:3863", "[::1]:3863").
    public func port(_ key: String) -> Int? {
        guard let first = list(key).first, let colon = first.lastIndex(of: ":") else { return nil }
        return Int(first[first.index(after: colon)...])
    }

    public var description: String {
        (["edgepool", daemon, "ready"] + fields.map { "\($0.key)=\(Self.quoted($0.value))" }).joined(separator: " ")
    }

    /// Parses a ready line; nil for any other line (log lines, progress, a half-written line).
    public init?(parsing line: some StringProtocol) {
        var words = Self.words(String(line))[...]
        guard let words0 = words.popFirst(), words0 == "edgepool", let daemon = words.popFirst(), !daemon.contains("="),
              words.popFirst() == "ready" else { return nil }
        var fields: [Field] = []
        for word in words {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { return nil }
            fields.append(Field(String(word[..<equals]), String(word[word.index(after: equals)...])))
        }
        self.init(daemon: daemon, fields)
    }

    private static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "\\" || $0 == "\t" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Splits at spaces outside double quotes, undoing the quoting (`key="a b"` → `key=a b`).
    private static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = "", inQuotes = false, escaped = false, started = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if inQuotes && character == "\\" {
                escaped = true
            } else if character == "\"" {
                inQuotes.toggle()
                started = true
            } else if !inQuotes && (character == " " || character == "\t") {
                if started || !current.isEmpty { words.append(current) }
                current = ""
                started = false
            } else {
                current.append(character)
            }
        }
        if started || !current.isEmpty { words.append(current) }
        return words
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension ReadyLine {
    /// Prints the line on standard output and flushes it (the reader waits for it).
    /// Prints the line (and tells systemd, under `Type=notify`, that the daemon is ready).
    public func announce() {
        print(description)
        fflush(nil)
        SystemdNotify.send("READY=1\nSTATUS=\(fields.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}
