import Metrics
import PathManager

/// HELP lines for the path manager's metrics (see `MetricHelp` for why they are a table).
public let pathManagerMetricHelp: [String: String] = [
    "edgepool_paths_in_use": "1 while the path is in use, 0 while it is retired (link down or probes failing).",
    "edgepool_paths_retirements_total": "Times the path was taken out of use.",
    "edgepool_paths_restorations_total": "Times the path was brought back with fresh subflows.",
    "edgepool_paths_renumberings_total": "Times the path's interface got a new address (its old subflows closed, new ones from the new address).",
    "edgepool_paths_connections_picked_up_total": "Connections found at start (sock_diag) and taken over: made before a restart.",
    "edgepool_paths_events_lost_total": "Times the kernel dropped MPTCP events (the events socket overflowed) and the connections were re-read through sock_diag.",
    "edgepool_paths_subflows_created_total": "Subflows the userspace PM asked the kernel to create.",
    "edgepool_paths_subflows_destroyed_total": "Stuck subflows the userspace PM asked the kernel to destroy.",
    "edgepool_paths_addresses_removed_total": "RM_ADDR sent for a lost path's address (userspace PM), so that the peer stops sending into it.",
    "edgepool_paths_subflow_priority_changes_total": "Subflows the userspace PM marked backup or active (MP_PRIO).",
    "edgepool_paths_subflow_requests_refused_total": "Subflow create, destroy or priority requests the kernel refused.",
]

/// The path manager's metrics (swift-metrics; Prometheus names).
struct PathManagerMetrics {
    private var inUse: [PathIdentifier: Gauge] = [:]
    private var retirements: [PathIdentifier: Counter] = [:]
    private var restorations: [PathIdentifier: Counter] = [:]
    private var renumberings: [PathIdentifier: Counter] = [:]
    let pickedUp = Counter(label: "edgepool_paths_connections_picked_up_total")
    let eventsLost = Counter(label: "edgepool_paths_events_lost_total")
    let subflowsCreated = Counter(label: "edgepool_paths_subflows_created_total")
    let subflowsDestroyed = Counter(label: "edgepool_paths_subflows_destroyed_total")
    let priorityChanges = Counter(label: "edgepool_paths_subflow_priority_changes_total")
    let addressesRemoved = Counter(label: "edgepool_paths_addresses_removed_total")
    let refused = Counter(label: "edgepool_paths_subflow_requests_refused_total")

    init(paths: [PathIdentifier]) {
        for path in paths {
            let dimensions = [("path", path.name)]
            inUse[path] = Gauge(label: "edgepool_paths_in_use", dimensions: dimensions)
            retirements[path] = Counter(label: "edgepool_paths_retirements_total", dimensions: dimensions)
            restorations[path] = Counter(label: "edgepool_paths_restorations_total", dimensions: dimensions)
            renumberings[path] = Counter(label: "edgepool_paths_renumberings_total", dimensions: dimensions)
            inUse[path]?.record(0)
        }
    }

    func retired(_ path: PathIdentifier) {
        inUse[path]?.record(0)
        retirements[path]?.increment()
    }

    func renumbered(_ path: PathIdentifier) {
        renumberings[path]?.increment()
    }

    func restored(_ path: PathIdentifier) {
        inUse[path]?.record(1)
        restorations[path]?.increment()
    }
}
