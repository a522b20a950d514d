import Testing

extension Tag {
    /// Real processes over real sockets (every suite of this target).
    @Tag static var live: Self
    /// Network namespaces, veth links and the kernel's MPTCP (root): the testbed, the path
    /// manager, multipath gateways.
    @Tag static var namespaces: Self
}
