import NIOCore

/// A local path: one interface or local address, usually one ISP.
public struct PathIdentifier: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var name: String
    public init(_ name: String) { self.name = name }
    public var description: String { name }
    public static func < (a: Self, b: Self) -> Bool { a.name < b.name }
}

/// What the operator wants of a path.
public struct PathPolicy: Hashable, Sendable {
    public enum Role: String, Hashable, Sendable, Codable {
        /// Carries traffic whenever it works.
        case active
        /// Its subflows are marked backup (MP_PRIO): used only while no active path works.
        case backup
    }
    public var role: Role
    /// Whether active probes towards the peer watch this path (the only way to see an ISP that
    /// fails while the local link stays up). Without, the link state alone decides.
    public var probed: Bool

    public init(role: Role = .active, probed: Bool = true) {
        self.role = role
        self.probed = probed
    }
}

/// When a path counts as lost and as back, and how flapping is damped.
public struct PathHealthConfiguration: Hashable, Sendable {
    /// Consecutive failed probes that mark a path lost.
    public var probeFailuresForLoss = 3
    /// Consecutive good probes (with the link up) before a lost path may return.
    public var probeSuccessesForReturn = 2
    /// A returning path waits this long, still good, before it is used again…
    public var returnHoldTime: TimeAmount = .milliseconds(100)
    /// …doubled for every loss within `flapWindow` beyond the first, up to `maximumHoldTime`.
    public var maximumHoldTime: TimeAmount = .seconds(5)
    public var flapWindow: TimeAmount = .seconds(10)
    /// Never two restorations of one path closer than this (each creates subflows on every
    /// connection).
    public var minimumRestoreInterval: TimeAmount = .milliseconds(500)

    public init() {}
}

/// The path manager's decisions, without sockets or clocks: link, probe and subflow reports
/// in, actions out. A lost path is taken out of use at once; a path that comes back is used
/// again after it has stayed good for a hold time that grows while it flaps, and never
/// restored twice within `minimumRestoreInterval`.
///
/// The driver carries the actions out with the kernel's path managers: for the in-kernel PM,
/// `.retire` deletes the path's endpoint (its subflows close on every connection: the
/// scheduler stops feeding a dead path) and `.restore` adds it again (fresh subflows on every
/// connection, none left in retransmission back-off).
public struct PathHealthMonitor: Sendable {
    public enum Health: Hashable, Sendable {
        /// In use.
        case up
        /// Lost; not in use.
        case down(since: NIODeadline, reason: String)
        /// Good again since `since`; used once it has held to `readyAt`.
        case returning(since: NIODeadline, readyAt: NIODeadline)
    }

    public enum Action: Hashable, Sendable {
        /// Take the path out of use now.
        case retire(PathIdentifier, reason: String)
        /// Use the path again: fresh subflows on every connection (as backup for a backup path).
        case restore(PathIdentifier, PathPolicy)
    }

    struct PathState: Sendable {
        var policy: PathPolicy
        var health: Health
        var linkUp: Bool
        /// The path's interface has its address (renumbering takes it away for a while).
        var hasAddress = true
        var failedProbes = 0
        var goodProbes = 0
        var lastRestore: NIODeadline?
        var losses: [NIODeadline] = []
    }

    public let configuration: PathHealthConfiguration
    private var paths: [PathIdentifier: PathState] = [:]

    public init(configuration: PathHealthConfiguration = PathHealthConfiguration()) {
        self.configuration = configuration
    }

    public func health(of path: PathIdentifier) -> Health? { paths[path]?.health }
    public var pathsInUse: [PathIdentifier] { paths.filter { $0.value.health == .up }.map(\.key).sorted() }

    /// When `timerFired(now:)` must next be called.
    public var nextDeadline: NIODeadline? {
        paths.values.compactMap { state -> NIODeadline? in
            if case .returning(_, let readyAt) = state.health { return readyAt }
            return nil
        }.min()
    }

    /// A path to manage. A path whose link is up is used at once (and probed from then on).
    /// A path without its address (`hasAddress` false: an interface that has none yet) waits
    /// for one.
    public mutating func add(_ path: PathIdentifier, policy: PathPolicy, linkUp: Bool, hasAddress: Bool = true, now: NIODeadline) -> [Action] {
        let usable = linkUp && hasAddress
        paths[path] = PathState(policy: policy, health: usable ? .up : .down(since: now, reason: linkUp ? "no address" : "link down"), linkUp: linkUp,
                                hasAddress: hasAddress, lastRestore: usable ? now : nil)
        return usable ? [.restore(path, policy)] : []
    }

    /// The path is no longer managed (its address went away); nothing is done to it.
    public mutating func remove(_ path: PathIdentifier) {
        paths[path] = nil
    }

    /// The interface's link (carrier, or the address) went up or down.
    public mutating func linkChanged(_ path: PathIdentifier, up: Bool, now: NIODeadline) -> [Action] {
        guard var state = paths[path] else { return [] }
        state.linkUp = up
        state.goodProbes = 0
        state.failedProbes = 0
        paths[path] = state
        return up ? good(path, now: now) : lost(path, reason: "link down", now: now)
    }

    /// The path's address left its interface (`present` false: the path is lost at once, as
    /// with its link) or is there again — the same one, or the new one of a renumbered path;
    /// a path back is held as after a link's return.
    public mutating func addressChanged(_ path: PathIdentifier, present: Bool, now: NIODeadline) -> [Action] {
        guard var state = paths[path], state.hasAddress != present else { return [] }
        state.hasAddress = present
        state.goodProbes = 0
        state.failedProbes = 0
        paths[path] = state
        return present ? good(path, now: now) : lost(path, reason: "address gone", now: now)
    }

    /// A probe towards the peer over this path was answered, or not (timed out).
    public mutating func probed(_ path: PathIdentifier, answered: Bool, now: NIODeadline) -> [Action] {
        guard var state = paths[path] else { return [] }
        if answered {
            state.failedProbes = 0
            state.goodProbes += 1
            paths[path] = state
            return good(path, now: now)
        }
        state.goodProbes = 0
        state.failedProbes += 1
        paths[path] = state
        guard state.failedProbes >= configuration.probeFailuresForLoss else { return [] }
        return lost(path, reason: "\(state.failedProbes) probes unanswered", now: now)
    }

    /// A subflow on this path sits in retransmission back-off past the driver's threshold: the
    /// path is broken even if the link and (not yet) the probes say otherwise.
    public mutating func subflowStuck(_ path: PathIdentifier, now: NIODeadline) -> [Action] {
        guard let state = paths[path] else { return [] }
        paths[path]?.goodProbes = 0
        guard state.health == .up else { return [] }
        return lost(path, reason: "a subflow is stuck in retransmission back-off", now: now)
    }

    public mutating func timerFired(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for path in paths.keys.sorted() {
            guard let state = paths[path], case .returning(_, let readyAt) = state.health, readyAt <= now, isGood(state) else { continue }
            paths[path]?.health = .up
            paths[path]?.lastRestore = now
            actions.append(.restore(path, state.policy))
        }
        return actions
    }

    private func isGood(_ state: PathState) -> Bool {
        state.linkUp && state.hasAddress && (!state.policy.probed || state.goodProbes >= configuration.probeSuccessesForReturn)
    }

    private mutating func good(_ path: PathIdentifier, now: NIODeadline) -> [Action] {
        guard let state = paths[path], case .down = state.health, isGood(state) else { return [] }
        let recentLosses = state.losses.filter { $0 + configuration.flapWindow > now }.count
        var hold = configuration.returnHoldTime
        for _ in 1..<max(recentLosses, 1) where hold < configuration.maximumHoldTime { hold = hold + hold }
        hold = min(hold, configuration.maximumHoldTime)
        var readyAt = now + hold
        if let last = state.lastRestore, last + configuration.minimumRestoreInterval > readyAt { readyAt = last + configuration.minimumRestoreInterval }
        paths[path]?.health = .returning(since: now, readyAt: readyAt)
        return []
    }

    private mutating func lost(_ path: PathIdentifier, reason: String, now: NIODeadline) -> [Action] {
        guard var state = paths[path] else { return [] }
        switch state.health {
        case .down:
            return []
        case .returning:
            state.health = .down(since: now, reason: reason)
            state.losses = state.losses.filter { $0 + configuration.flapWindow > now } + [now]
            paths[path] = state
            return []
        case .up:
            state.health = .down(since: now, reason: reason)
            state.losses = state.losses.filter { $0 + configuration.flapWindow > now } + [now]
            paths[path] = state
            return [.retire(path, reason: reason)]
        }
    }
}
