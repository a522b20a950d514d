import RSerPoolWire

/// Which authenticated identities may register PEs in which pools (RFC 5355 §2.1: only
/// authorized PEs may join a pool). An identity is what the PE's TLS certificate names (its
/// first DNS subject alternative name, else its common name). Rules are `IDENTITY=POOL,POOL`:
/// `*` as the identity is any authenticated one, `*` as a pool any pool.
///
///     edge-1.example.net=CalcAppPool     edge-1 may register in CalcAppPool only
///     *=EchoPool                         every authenticated PE may register in EchoPool
///     admin.example.net=*                admin may register anywhere
public struct PoolAuthorization: Sendable, Hashable {
    /// The pools each identity may register in; nil in the set: every pool.
    public private(set) var rules: [String: Set<String>] = [:]

    public init() {}

    /// Parses `IDENTITY=POOL[,POOL…]` rules (repeatable identities add up).
    public init(parsing texts: [String]) throws(AuthorizationRuleError) {
        for text in texts { try add(text) }
    }

    public mutating func add(_ text: String) throws(AuthorizationRuleError) {
        let parts = text.split(separator: "=", maxSplits: 1).map(Self.trimmed)
        guard parts.count == 2, !parts[0].isEmpty else { throw AuthorizationRuleError(text: text, reason: "expected IDENTITY=POOL[,POOL…]") }
        let pools = parts[1].split(separator: ",").map(Self.trimmed).filter { !$0.isEmpty }
        guard !pools.isEmpty else { throw AuthorizationRuleError(text: text, reason: "no pool named") }
        rules[parts[0], default: []].formUnion(pools)
    }

    private static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// Whether `identity` (nil: the association is not authenticated) may register in `pool`.
    public func permits(_ identity: String?, pool: PoolHandle) -> Bool {
        guard let identity else { return false }
        let name = pool.description
        for key in [identity, "*"] {
            if let pools = rules[key], pools.contains("*") || pools.contains(name) { return true }
        }
        return false
    }

    /// The rules as they were written (sorted), for logs and errors.
    public var descriptions: [String] { rules.keys.sorted().map { "\($0)=\(rules[$0]!.sorted().joined(separator: ","))" } }
}

public struct AuthorizationRuleError: Error, Hashable, Sendable, CustomStringConvertible {
    public var text: String
    public var reason: String
    public init(text: String, reason: String) {
        self.text = text
        self.reason = reason
    }
    public var description: String { "'\(text)': \(reason)" }
}
