import Logging
import Metrics
import NIOConcurrencyHelpers
import Prometheus

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

    static func metricsText() -> String { registry.emitToString() }
}
