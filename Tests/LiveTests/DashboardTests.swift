import Foundation
import GatewayService
import PathManagerService
import RSerPool
import Testing

/// The Grafana dashboard (packaging/grafana/edgepool.json) shows only metrics the daemons
/// export: every name in its queries is in one of their HELP tables.
@Suite struct DashboardTests {
    @Test func everyQueriedMetricIsOneTheDaemonsExport() throws {
        let data = try Data(contentsOf: packageRoot.appendingPathComponent("packaging/grafana/edgepool.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= 20)
        let exported = Set(MetricHelp.registrar.keys).union(gatewayMetricHelp.keys).union(pathManagerMetricHelp.keys)
        let pattern = try NSRegularExpression(pattern: "(rserpool|edgepool)_[a-z_]+")
        var queried: Set<String> = []
        for expression in expressions {
            for match in pattern.matches(in: expression, range: NSRange(expression.startIndex..., in: expression)) {
                queried.insert(String(expression[Range(match.range, in: expression)!]))
            }
        }
        #expect(queried.count >= 25)
        #expect(queried.subtracting(exported).isEmpty, "not exported by any daemon: \(queried.subtracting(exported).sorted())")
    }
}
