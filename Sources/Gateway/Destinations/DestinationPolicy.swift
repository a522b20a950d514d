import RSerPoolWire

/// One allow or deny rule: a host pattern and an optional port range.
///
/// Written as `PATTERN[:PORTS]`: `10.0.0.0/8`, `[fd00::]/8:443`, `example.com` (that name
/// and its subdomains), `*.example.com` (subdomains only), `*` (everything); PORTS is `443`
/// or `8000-8999`.
public struct DestinationRule: Hashable, Sendable, CustomStringConvertible {
    public enum Pattern: Hashable, Sendable {
        case any
        case network(IPNetwork)
        /// Matches the name and, when `includeSelf` is false, only its subdomains.
        case domain(String, includeSelf: Bool)
    }

    public var pattern: Pattern
    public var ports: ClosedRange<UInt16>?

    public init(pattern: Pattern, ports: ClosedRange<UInt16>? = nil) {
        self.pattern = pattern
        self.ports = ports
    }

    public init(parsing text: String) throws(DestinationRuleError) {
        var hostPart = Substring(text.trimmingCharacters(in: .whitespaces))
        var ports: ClosedRange<UInt16>?
        // A port suffix follows the last colon, unless that colon is inside a bare IPv6 address.
        if let colon = hostPart.lastIndex(of: ":"), hostPart.hasPrefix("[") || hostPart.filter({ $0 == ":" }).count == 1 {
            let portText = hostPart[hostPart.index(after: colon)...]
            if !portText.contains("]") && !portText.contains("/") {
                let bounds = portText.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let low = UInt16(bounds[0]), let high = UInt16(bounds.last!), low <= high else {
                    throw DestinationRuleError(text: text, reason: "port must be N or N-M (0–65535)")
                }
                ports = low...high
                hostPart = hostPart[..<colon]
            }
        }
        if hostPart == "*" {
            self.init(pattern: .any, ports: ports)
        } else if let network = IPNetwork(hostPart) {
            self.init(pattern: .network(network), ports: ports)
        } else if hostPart.hasPrefix("*."), case .name(let name)? = ProxyDestination.parseHost(hostPart.dropFirst(2)) {
            self.init(pattern: .domain(name, includeSelf: false), ports: ports)
        } else if !hostPart.contains("/"), case .name(let name)? = ProxyDestination.parseHost(hostPart) {
            self.init(pattern: .domain(name, includeSelf: true), ports: ports)
        } else {
            throw DestinationRuleError(text: text, reason: "expected CIDR (10.0.0.0/8, [::1]/128), a domain (example.com, *.example.com) or *")
        }
    }

    func matches(name: String?, address: IPAddress?, port: UInt16) -> Bool {
        if let ports, !ports.contains(port) { return false }
        switch pattern {
        case .any:
            return true
        case .network(let network):
            return address.map(network.contains) ?? false
        case .domain(let suffix, let includeSelf):
            guard let name else { return false }
            return (includeSelf && name == suffix) || name.hasSuffix("." + suffix)
        }
    }

    public var description: String {
        let host = switch pattern {
        case .any: "*"
        case .network(let network): network.description
        case .domain(let name, let includeSelf): includeSelf ? name : "*." + name
        }
        guard let ports else { return host }
        return ports.lowerBound == ports.upperBound ? "\(host):\(ports.lowerBound)" : "\(host):\(ports.lowerBound)-\(ports.upperBound)"
    }
}

public struct DestinationRuleError: Error, Hashable, Sendable, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "destination rule '\(text)': \(reason)" }
}

/// Which destinations the gateway connects to.
///
/// Order: a matching **deny** rule refuses; a destination in a protected range (see
/// `protectedRanges`: the gateway's own loopback, private and shared networks, unique local
/// IPv6, link-local incl. cloud metadata 169.254.169.254, multicast, broadcast, unspecified) is
/// refused unless an address rule allows that range — nothing forwards into the operator's
/// networks unless told to; a matching **allow** rule admits; else the default decides (allow
/// unless `defaultAllow` is false). Names are checked before resolution, and every resolved
/// address again (a name that resolves to 10.0.0.1 is refused like the literal).
public struct DestinationPolicy: Hashable, Sendable {
    public var allow: [DestinationRule]
    public var deny: [DestinationRule]
    public var defaultAllow: Bool

    /// A range no destination rule but an address rule opens.
    public struct ProtectedRange: Hashable, Sendable {
        public var network: IPNetwork
        /// What the range is, for the refusal's text ("private", "link-local", …).
        public var name: String
    }

    /// The ranges refused unless an address rule allows them (RFC 6890's special-purpose
    /// registries, the parts a proxy must not reach on a client's say-so).
    public static let protectedRanges: [ProtectedRange] = [
        ("0.0.0.0/8", "unspecified"), ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"), ("169.254.0.0/16", "link-local (incl. cloud metadata)"),
        ("224.0.0.0/4", "multicast"), ("255.255.255.255/32", "broadcast"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"), ("ff00::/8", "multicast"),
    ].map { ProtectedRange(network: IPNetwork(Substring($0.0))!, name: $0.1) }

    public static var protectedNetworks: [IPNetwork] { protectedRanges.map(\.network) }

    /// The ports an HTTP CONNECT may reach without a rule that names the port (RFC 9110 §9.3.6
    /// warns that tunnels to arbitrary ports turn a proxy into a relay for any protocol).
    public static let defaultTunnelPorts: [ClosedRange<UInt16>] = [443...443]

    public init(allow: [DestinationRule] = [], deny: [DestinationRule] = [], defaultAllow: Bool = true) {
        self.allow = allow
        self.deny = deny
        self.defaultAllow = defaultAllow
    }

    public enum Decision: Hashable, Sendable {
        case allowed
        case refused(String)
    }

    /// Checks the requested destination as the client named it.
    public func check(_ destination: ProxyDestination) -> Decision {
        switch destination.host {
        case .address(let ip): check(name: nil, address: ip, port: destination.port)
        case .name(let name): check(name: name, address: nil, port: destination.port)
        }
    }

    /// Checks one address a requested name resolved to (`name` is the requested name).
    public func check(resolved address: IPAddress, name: String?, port: UInt16) -> Decision {
        check(name: name, address: address, port: port)
    }

    private func check(name: String?, address: IPAddress?, port: UInt16) -> Decision {
        if let rule = deny.first(where: { $0.matches(name: name, address: address, port: port) }) {
            return .refused("denied by rule \(rule)")
        }
        // Protected ranges open only to an allow rule for that address range, never to a
        // name rule (a name can be made to resolve anywhere) or to `*`.
        if let address, let range = Self.protectedRanges.first(where: { $0.network.contains(address) }) {
            let opened = allow.contains { rule in
                if case .network = rule.pattern { return rule.matches(name: nil, address: address, port: port) }
                return false
            }
            if !opened {
                return .refused("\(address) is in the \(range.name) range \(range.network) (allow it with an address rule such as --allow \(range.network))")
            }
        }
        if allow.contains(where: { $0.matches(name: name, address: address, port: port) }) { return .allowed }
        if address == nil { return .allowed }   // decided again once the name is resolved
        return defaultAllow ? .allowed : .refused("not in the allow list")
    }

    /// Checks an HTTP CONNECT target: a port in `tunnelPorts` (443 by default), or one that an
    /// allow rule naming the port admits (`--allow git.example.org:22`, `--allow 10.1.2.3/32:5432`);
    /// then the ordinary check. For a name, an address rule naming the port counts too (the
    /// resolved addresses are checked against it afterwards).
    public func checkTunnel(_ destination: ProxyDestination, tunnelPorts: [ClosedRange<UInt16>] = Self.defaultTunnelPorts) -> Decision {
        if !tunnelPorts.contains(where: { $0.contains(destination.port) }) {
            let named = allow.contains { rule in
                guard let ports = rule.ports, ports.contains(destination.port) else { return false }
                switch (destination.host, rule.pattern) {
                case (.address(let ip), _): return rule.matches(name: nil, address: ip, port: destination.port)
                case (.name(let name), .domain), (.name(let name), .any): return rule.matches(name: name, address: nil, port: destination.port)
                case (.name, .network): return true
                }
            }
            if !named {
                return .refused("CONNECT is limited to port\(tunnelPorts.count == 1 && tunnelPorts[0].count == 1 ? "" : "s") \(tunnelPorts.map(Self.portText).joined(separator: ",")); an --allow rule that names port \(destination.port) opens it")
            }
        }
        return check(destination)
    }

    static func portText(_ range: ClosedRange<UInt16>) -> String {
        range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
    }
}
