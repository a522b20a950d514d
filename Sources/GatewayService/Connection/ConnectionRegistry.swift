import NIOConcurrencyHelpers
import NIOCore
import RSerPoolWire

/// The gateway's open connections, reachable from any thread: for the connection limit, the
/// subflow sampler and the drain on shutdown. Each connection itself is touched only on its loop.
final class ConnectionRegistry: Sendable {
    struct Entry: Sendable {
        let loop: EventLoop
        let connection: NIOLoopBound<GatewayConnection>
        var tokens: [(GatewayConnection.Side, UInt32)] = []
    }

    /// Why `add` refused a connection.
    enum Refusal: Sendable {
        case limit
        case perClientLimit
    }

    private struct State: Sendable {
        var entries: [UInt64: Entry] = [:]
        /// Open connections per client key (its IPv4 address, its IPv6 /64).
        var perClient: [IPAddress: Int] = [:]
        var clientOf: [UInt64: IPAddress] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let nextID = NIOLockedValueBox(UInt64(1))

    func makeID() -> UInt64 {
        nextID.withLockedValue { value in
            defer { value += 1 }
            return value
        }
    }

    /// The key a client counts under (its connections, its failed logins): its IPv4 address, or
    /// its IPv6 /64 (one host can use every address of its /64).
    static func clientKey(_ ip: IPAddress) -> IPAddress {
        if case .v6(let high, _) = ip { return .v6(high, 0) }
        return ip
    }

    /// Adds a connection from `client` (its address) unless `limit` are open, or
    /// `perClientLimit` from that client; nil when added, else why not.
    func add(_ id: UInt64, _ connection: GatewayConnection, client ip: IPAddress?, limit: Int, perClientLimit: Int) -> Refusal? {
        let entry = Entry(loop: connection.client.eventLoop, connection: NIOLoopBound(connection, eventLoop: connection.client.eventLoop))
        let client = ip.map(Self.clientKey)
        return state.withLockedValue { state in
            guard state.entries.count < limit else { return .limit }
            if let client {
                guard state.perClient[client, default: 0] < perClientLimit else { return .perClientLimit }
                state.perClient[client, default: 0] += 1
                state.clientOf[id] = client
            }
            state.entries[id] = entry
            return nil
        }
    }

    func remove(_ id: UInt64) {
        state.withLockedValue { state in
            guard state.entries.removeValue(forKey: id) != nil else { return }
            if let client = state.clientOf.removeValue(forKey: id) {
                let left = state.perClient[client, default: 1] - 1
                state.perClient[client] = left > 0 ? left : nil
            }
        }
    }

    func setTokens(_ id: UInt64, _ tokens: [(GatewayConnection.Side, UInt32)]) {
        state.withLockedValue { $0.entries[id]?.tokens = tokens }
    }

    var count: Int { state.withLockedValue { $0.entries.count } }

    var all: [Entry] { state.withLockedValue { Array($0.entries.values) } }

    /// Entries with at least one MPTCP side.
    var mptcp: [Entry] { state.withLockedValue { $0.entries.values.filter { !$0.tokens.isEmpty } } }
}
