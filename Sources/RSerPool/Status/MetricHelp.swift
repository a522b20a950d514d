/// HELP lines for the Prometheus exposition text. swift-metrics carries no help text, and
/// registering one beside the metrics factory's empty one stops swift-prometheus (help texts of
/// one name must agree), so the text is annotated when it is served: `# HELP name …` before
/// each `# TYPE name …` whose name the table knows. `promtool check metrics` wants one for
/// every metric.
public enum MetricHelp {
    public static func annotate(_ exposition: String, help: [String: String]) -> String {
        var out: [Substring] = []
        var helped = Set<Substring>()
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# HELP ") {
                helped.insert(line.dropFirst(7).prefix { $0 != " " })
            } else if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).prefix { $0 != " " }
                if !helped.contains(name), let text = help[String(name)] {
                    out.append(Substring("# HELP \(name) \(text)"))
                    helped.insert(name)
                }
            }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    /// The registrar's metrics.
    public static let registrar: [String: String] = [
        "rserpool_registrations_total": "PE registrations accepted that added a PE.",
        "rserpool_reregistrations_total": "Registrations of PEs already in the handlespace (updates).",
        "rserpool_deregistrations_total": "PEs deregistered by their own association.",
        "rserpool_registration_rejections_total": "Registrations refused, by Operation Error cause.",
        "rserpool_handle_resolutions_total": "Handle resolutions answered.",
        "rserpool_handle_resolutions_unknown_pool_total": "Handle resolutions for a pool the registrar does not know.",
        "rserpool_tls_handshakes_total": "ASAP associations whose TLS handshake completed.",
        "rserpool_tls_handshakes_under_way": "Accepted associations whose TLS handshake has not completed yet (bounded by --max-handshakes).",
        "rserpool_keepalives_sent_total": "Endpoint Keep-Alives sent to own PEs.",
        "rserpool_keepalive_failures_total": "Own PEs removed because a keep-alive went unanswered.",
        "rserpool_pool_element_removals_total": "PEs removed from the handlespace, by reason.",
        "rserpool_endpoint_unreachable_reports_total": "Endpoint Unreachable reports counted.",
        "rserpool_endpoint_unreachable_reports_ignored_total": "Endpoint Unreachable reports ignored (over the association's rate, or repeats).",
        "rserpool_protocol_errors_total": "Malformed or unexpected ASAP and ENRP messages.",
        "rserpool_pool_elements": "PEs in the handlespace.",
        "rserpool_pools": "Pools in the handlespace.",
        "rserpool_associations": "ASAP and ENRP associations open.",
        "rserpool_associations_refused_total": "Associations closed at accept, by reason (limit, per-address limit).",
        "rserpool_associations_closed_total": "Associations closed by their limits, by reason.",
        "rserpool_enrp_peers": "Peer registrars known.",
        "rserpool_enrp_takeovers_total": "Takeovers of silent peer registrars completed.",
        "rserpool_enrp_resynchronisations_total": "Handle Table downloads from peers.",
        "rserpool_enrp_checksum_mismatches_total": "Presence checksums that disagreed with the local view.",
    ]
}
