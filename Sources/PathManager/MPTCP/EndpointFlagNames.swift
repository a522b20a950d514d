extension MPTCPPathManager.EndpointFlags {
    /// The flags by the names `ip mptcp endpoint` uses.
    public static let names: [(Self, String)] = [(.signal, "signal"), (.subflow, "subflow"), (.backup, "backup"), (.fullmesh, "fullmesh"), (.implicit, "implicit")]

    /// Flags from names separated by commas ("subflow,backup").
    /// - Throws: ``EndpointFlagError`` for a name that is none of them.
    public init(parsing text: String) throws(EndpointFlagError) {
        self = []
        for word in text.split(separator: ",") {
            let name = String(word.filter { $0 != " " })
            guard let flag = Self.names.first(where: { $0.1 == name && $0.0 != .implicit })?.0 else {
                throw EndpointFlagError(name: name)
            }
            insert(flag)
        }
    }

    /// The names of the flags set, in `ip mptcp`'s order.
    public var nameList: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

/// An endpoint flag name that `ip mptcp endpoint` does not know.
public struct EndpointFlagError: Error, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public init(name: String) { self.name = name }
    public var description: String { "unknown endpoint flag '\(name)' (signal, subflow, backup, fullmesh)" }
}

extension MPTCPPathManager.Endpoint: CustomStringConvertible {
    /// As `edgepool paths endpoints` prints it: "id 2 192.0.2.2 port 7000 subflow,backup"
    /// (the interface, by index, is the kernel side's to name).
    public var description: String {
        var text = "id \(id) \(address)"
        if port != 0 { text += " port \(port)" }
        let names = flags.nameList
        return text + " " + (names.isEmpty ? "-" : names.joined(separator: ","))
    }
}
