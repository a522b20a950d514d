import RSerPoolWire

/// Whether a gateway's listeners would make it an open proxy: a mode that forwards to
/// destinations of the client's choosing (SOCKS5, HTTP proxy, an entry gateway without a fixed
/// destination), listening beyond loopback, with neither authentication nor a client access
/// list. Such a gateway does not start unless the operator asks for an open proxy explicitly.
public enum ListenerExposure {
    /// The reason to refuse, or nil when the listeners are safe (or the operator chose an open proxy).
    ///
    /// - Parameters:
    ///   - listen: the listening addresses (an unspecified address listens on every interface).
    ///   - clientChoosesDestination: the mode forwards wherever the client asks.
    ///   - authenticated: clients must log in (SOCKS5 or HTTP users are configured).
    ///   - clients: the client access list (one that admits everyone does not count).
    ///   - openProxyAllowed: the operator asked for an open proxy explicitly.
    public static func openProxyProblem(listen: [IPAddress], clientChoosesDestination: Bool, authenticated: Bool,
                                        clients: ClientAccessList, openProxyAllowed: Bool) -> String? {
        guard clientChoosesDestination, !authenticated, clients.admitsEveryone, !openProxyAllowed else { return nil }
        let exposed = listen.filter { !$0.isLoopback }
        guard let first = exposed.first else { return nil }
        return "listening on \(first) without authentication or a client access list would make an open proxy: "
            + "add --user NAME:PASSWORD, --allow-client CIDR, listen on 127.0.0.1 / [::1], or pass --open-proxy if that is what you want"
    }
}
