import Foundation
import Logging
import ServiceLifecycle

/// A daemon's status endpoint as a `Service`: `/metrics` (Prometheus text from `metrics`),
/// and for a registrar `/handlespace` (its snapshot as JSON). It stops with the daemon's
/// service group.
public struct StatusService: Service {
    public let endpoint: Endpoint
    public let registrar: Registrar?
    public let metrics: @Sendable () -> String
    /// More paths the daemon serves (a gateway's embedded path manager: `/paths`).
    public let routes: [String: StatusServer.Route]
    public let logger: Logger

    public init(endpoint: Endpoint, registrar: Registrar?, metrics: @escaping @Sendable () -> String,
                routes: [String: StatusServer.Route] = [:], logger: Logger) {
        self.endpoint = endpoint
        self.registrar = registrar
        self.metrics = metrics
        self.routes = routes
        self.logger = logger
    }

    public func run() async throws {
        let metrics = self.metrics
        var routes = self.routes
        routes["/metrics"] = { ("text/plain; version=0.0.4", metrics()) }
        if let registrar {
            routes["/handlespace"] = {
                guard let snapshot = try? await registrar.snapshot() else { return ("application/json", "{}") }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                return ("application/json", String(decoding: (try? encoder.encode(snapshot)) ?? Data(), as: UTF8.self))
            }
        }
        let server = try await StatusServer.start(on: endpoint.socketAddress(), routes: routes)
        logger.info("status endpoint", metadata: ["address": "\(server.localAddress?.endpointDescription ?? "?")", "paths": "\(routes.keys.sorted())"])
        try? await gracefulShutdown()
        try? await server.stop()
    }
}
