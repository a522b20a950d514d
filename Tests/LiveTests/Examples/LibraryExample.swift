// The Swift example of docs/library/README.md, compiled and run by LibraryExampleTests;
// the test also checks that the guide shows exactly the lines between the markers.
// example:begin
import Logging
import NIOCore
import RSerPool
import RSerPoolCore
import RSerPoolWire
import ServiceLifecycle

/// Registers a server that listens at `server` in the pool "EchoPool", then reaches it as a
/// pool user would: a registrar resolves the pool, its policy picks a PE, the user connects
/// (a PE that does not accept is reported and the next one tried). Returns the PE it reached
/// as the registrar described it; the graceful shutdown at the end deregisters the PE.
func reachThePool(server: SocketAddress, registrar: SocketAddress) async throws -> PoolElementParameter {
    let registrars = RegistrarList([registrar])
    let element = PoolElement(
        registration: PoolElementRegistration(poolHandle: "EchoPool", userTransport: TransportAddress(tcp: server)!,
                                              policy: .leastUsed(load: 0)),
        registrars: registrars)
    let services = ServiceGroup(services: [element], logger: Logger(label: "example"))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await services.run() }
        try await element.waitUntilRegistered()
        // Report load changes as they happen (the registrar re-selects on them):
        element.updatePolicy(.leastUsed(load: PoolPolicy.load(fraction: 0.5)))

        let user = PoolUser(registrars: registrars)
        let connection = try await user.connect(to: "EchoPool", transport: .tcp)
        try await connection.channel.close()
        await services.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return connection.element
    }
}
// example:end
