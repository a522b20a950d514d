import RSerPoolWire

/// Which clients may use the gateway (`--allow-client CIDR`, repeatable): everyone when the
/// list is empty, else only addresses inside one of its networks. Checked at accept, before a
/// single byte of the client's is read.
public struct ClientAccessList: Hashable, Sendable, CustomStringConvertible {
    public var networks: [IPNetwork]

    public init(_ networks: [IPNetwork] = []) {
        self.networks = networks
    }

    /// Parses `10.0.0.0/8`, `[2001:db8::]/32` or a single address.
    public init(parsing rules: [String]) throws(ClientAccessListError) {
        var networks: [IPNetwork] = []
        for rule in rules {
            guard let network = IPNetwork(Substring(rule.trimmingCharacters(in: .whitespaces))) else {
                throw ClientAccessListError(text: rule)
            }
            networks.append(network)
        }
        self.init(networks)
    }

    /// True when no list was given.
    public var admitsEveryone: Bool { networks.isEmpty }

    public func admits(_ address: IPAddress) -> Bool {
        networks.isEmpty || networks.contains { $0.contains(address) }
    }

    public var description: String { networks.isEmpty ? "any client" : networks.map(\.description).joined(separator: ", ") }
}

public struct ClientAccessListError: Error, Hashable, Sendable, CustomStringConvertible {
    public var text: String
    public var description: String { "client rule '\(text)': expected an address or CIDR (192.0.2.0/24, [2001:db8::]/32)" }
}
