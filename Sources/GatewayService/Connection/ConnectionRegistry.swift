import NIOConcurrencyHelpers
import NIOCore

/// The gateway's open connections, reachable from any thread: for the connection limit, the
/// subflow sampler and the drain on shutdown. Each connection itself is touched only on its loop.
final class ConnectionRegistry: Sendable {
    struct Entry: Sendable {
        let loop: EventLoop
        let connection: NIOLoopBound<GatewayConnection>
        var tokens: [(GatewayConnection.Side, UInt32)] = []
    }

    private let entries = NIOLockedValueBox([UInt64: Entry]())
    private let nextID = NIOLockedValueBox(UInt64(1))

    func makeID() -> UInt64 {
        nextID.withLockedValue { value in
            defer { value += 1 }
            return value
        }
    }

    /// Adds a connection unless `limit` are open; false means refuse it.
    func add(_ id: UInt64, _ connection: GatewayConnection, limit: Int) -> Bool {
        let entry = Entry(loop: connection.client.eventLoop, connection: NIOLoopBound(connection, eventLoop: connection.client.eventLoop))
        return entries.withLockedValue { entries in
            guard entries.count < limit else { return false }
            entries[id] = entry
            return true
        }
    }

    func remove(_ id: UInt64) {
        entries.withLockedValue { _ = $0.removeValue(forKey: id) }
    }

    func setTokens(_ id: UInt64, _ tokens: [(GatewayConnection.Side, UInt32)]) {
        entries.withLockedValue { $0[id]?.tokens = tokens }
    }

    var count: Int { entries.withLockedValue { $0.count } }

    var all: [Entry] { entries.withLockedValue { Array($0.values) } }

    /// Entries with at least one MPTCP side.
    var mptcp: [Entry] { entries.withLockedValue { $0.values.filter { !$0.tokens.isEmpty } } }
}
