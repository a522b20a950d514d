import GatewayService
import Logging
import Metrics
import NIOConcurrencyHelpers
import PathManagerService
import Prometheus
import RSerPool

/// Process-wide logging and metrics, set up once per process.
enum Bootstrap {
    private static let done = NIOLockedValueBox(false)
    static let registry = PrometheusCollectorRegistry()

    static func run(logLevel: Logger.Level) {
        let first = done.withLockedValue { value in
            defer { value = true }
            return !value
        }
        guard first else { return }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// The exposition text, with a HELP line for every metric the daemons make.
    static func metricsText() -> String {
        MetricHelp.annotate(registry.emitToString(), help: MetricHelp.registrar.merging(gatewayMetricHelp) { first, _ in first }.merging(pathManagerMetricHelp) { first, _ in first })
    }
}
