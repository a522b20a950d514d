import CoreMetrics
import RSerPoolCore
import RSerPoolWire

/// The registrar's Prometheus-friendly metrics (swift-metrics; the CLI bootstraps Prometheus).
struct RegistrarMetrics {
    let registrations = Counter(label: "rserpool_registrations_total")
    let reregistrations = Counter(label: "rserpool_reregistrations_total")
    let deregistrations = Counter(label: "rserpool_deregistrations_total")
    let resolutions = Counter(label: "rserpool_handle_resolutions_total")
    let emptyResolutions = Counter(label: "rserpool_handle_resolutions_unknown_pool_total")
    let tlsHandshakes = Counter(label: "rserpool_tls_handshakes_total")
    let handshakesUnderWay = Gauge(label: "rserpool_tls_handshakes_under_way")
    let keepAlivesSent = Counter(label: "rserpool_keepalives_sent_total")
    let keepAliveFailures = Counter(label: "rserpool_keepalive_failures_total")
    let unreachableReports = Counter(label: "rserpool_endpoint_unreachable_reports_total")
    let ignoredUnreachableReports = Counter(label: "rserpool_endpoint_unreachable_reports_ignored_total")
    let protocolErrors = Counter(label: "rserpool_protocol_errors_total")
    let poolElements = Gauge(label: "rserpool_pool_elements")
    let pools = Gauge(label: "rserpool_pools")
    let associations = Gauge(label: "rserpool_associations")
    let peers = Gauge(label: "rserpool_enrp_peers")
    let takeovers = Counter(label: "rserpool_enrp_takeovers_total")
    let resynchronisations = Counter(label: "rserpool_enrp_resynchronisations_total")
    let checksumMismatches = Counter(label: "rserpool_enrp_checksum_mismatches_total")
    private var rejections: [ErrorCauseCode: Counter] = [:]
    private var removals: [RegistrarEvent.RemovalReason: Counter] = [:]

    mutating func rejected(_ cause: ErrorCauseCode) {
        if rejections[cause] == nil {
            rejections[cause] = Counter(label: "rserpool_registration_rejections_total", dimensions: [("cause", cause.description)])
        }
        rejections[cause]!.increment()
    }

    mutating func removed(_ reason: RegistrarEvent.RemovalReason) {
        if removals[reason] == nil {
            removals[reason] = Counter(label: "rserpool_pool_element_removals_total", dimensions: [("reason", reason.rawValue)])
        }
        removals[reason]!.increment()
        if reason == .keepAliveTimeout { keepAliveFailures.increment() }
    }

    private var guardCounters: [String: Counter] = [:]

    /// An association refused at accept ("limit", "per_address_limit").
    mutating func associationRefused(_ reason: String) {
        counter("rserpool_associations_refused_total", reason).increment()
    }

    /// An association closed by its guard ("partial_message_timeout", "not_reading", "idle").
    mutating func associationClosed(_ reason: String) {
        counter("rserpool_associations_closed_total", reason).increment()
    }

    private mutating func counter(_ label: String, _ reason: String) -> Counter {
        let key = label + "|" + reason
        if let counter = guardCounters[key] { return counter }
        let counter = Counter(label: label, dimensions: [("reason", reason)])
        guardCounters[key] = counter
        return counter
    }
}
