import Foundation
import Testing

/// Every daemon's /metrics passes Prometheus's own linter (promtool, Debian package prometheus).
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(3))) struct MetricsLintTests {
    static var unavailableReason: String? { missingTool("/usr/bin/promtool", package: "prometheus") }

    func lint(_ statusPort: Int) async throws -> (status: Int32, output: [String], text: String) {
        let text = try await runCommand("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(statusPort)/metrics"]).output.joined(separator: "\n") + "\n"
        let file = temporaryFile("metrics")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try await runCommand("/bin/sh", ["-c", "/usr/bin/promtool check metrics < \(file)"])
        return (result.status, result.output, text)
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func theRegistrarsAndTheGatewaysMetricsPassPromtool() async throws {
        let statusPort = try freePort()
        let registrar = try await LiveRegistrar.start(extra: ["--status", "127.0.0.1:\(statusPort)"])
        let pe = try await startPoolElement(registrar: registrar.endpoint, pool: "LintPool")
        _ = try await resolve(registrar.endpoint, pool: "LintPool")
        _ = try await resolve(registrar.endpoint, pool: "NoSuchPool")
        let registrarLint = try await lint(statusPort)
        #expect(registrarLint.status == 0 && registrarLint.output.isEmpty, "\(registrarLint.output)")
        #expect(registrarLint.text.contains("# HELP rserpool_pool_elements "))

        let gatewayStatus = try freePort()
        let origin = try await Origin.start()
        let gateway = try await LiveGateway.start("socks", ["--allow", "127.0.0.1/32", "--status", "127.0.0.1:\(gatewayStatus)"])
        _ = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "127.0.0.1:\(gateway.port)", "-o", "/dev/null", "http://127.0.0.1:\(origin.port)/bytes/1000"])
        _ = try await runCommand("/usr/bin/curl", ["-sS", "--socks5", "127.0.0.1:\(gateway.port)", "-o", "/dev/null", "http://10.0.0.1/"])
        _ = try await gateway.records(atLeast: 2)
        let gatewayLint = try await lint(gatewayStatus)
        #expect(gatewayLint.status == 0 && gatewayLint.output.isEmpty, "\(gatewayLint.output)")
        #expect(gatewayLint.text.contains("# HELP edgepool_gateway_connections_total "))
        withExtendedLifetime(pe) {}
    }
}
