import PathManager
import RSerPoolWire

#if canImport(Glibc)
import Glibc
#endif

/// The in-kernel MPTCP path manager of this namespace, over generic netlink.
public final class KernelPathManager {
    public let socket: NetlinkSocket
    public let family: GenericNetlink.Family

    /// Finds the `mptcp_pm` family; throws with a message that says what is missing.
    public init() throws(NetlinkError) {
        socket = try NetlinkSocket(protocol: GenericNetlink.netlinkProtocol)
        let answers: [NetlinkMessage]
        do {
            answers = try socket.request(GenericNetlink.familyRequest(name: MPTCPPathManager.familyName, sequence: socket.makeSequence()))
        } catch {
            throw NetlinkError("this kernel has no '\(MPTCPPathManager.familyName)' generic netlink family (MPTCP support, net.mptcp.enabled): \(error)", errno: error.errno)
        }
        guard let first = answers.first else { throw NetlinkError("the kernel did not describe the '\(MPTCPPathManager.familyName)' family") }
        family = try GenericNetlink.family(from: first)
    }

    public func endpoints() throws(NetlinkError) -> [MPTCPPathManager.Endpoint] {
        var endpoints: [MPTCPPathManager.Endpoint] = []
        for answer in try socket.request(MPTCPPathManager.dumpEndpoints(family: family.identifier, sequence: socket.makeSequence())) {
            endpoints += try MPTCPPathManager.endpoints(in: answer)
        }
        return endpoints
    }

    public func add(_ endpoint: MPTCPPathManager.Endpoint) throws(NetlinkError) {
        _ = try socket.request(MPTCPPathManager.addEndpoint(endpoint, family: family.identifier, sequence: socket.makeSequence()))
    }

    public func delete(id: UInt8) throws(NetlinkError) {
        _ = try socket.request(MPTCPPathManager.deleteEndpoint(id: id, family: family.identifier, sequence: socket.makeSequence()))
    }

    public func setBackup(id: UInt8, _ backup: Bool) throws(NetlinkError) {
        _ = try socket.request(MPTCPPathManager.setBackup(id: id, backup, family: family.identifier, sequence: socket.makeSequence()))
    }

    /// Adds an endpoint on the interface named `device` (nil: no interface).
    public func add(address: IPAddress, id: UInt8, flags: MPTCPPathManager.EndpointFlags, port: UInt16, device: String?) throws {
        var index: Int32 = 0
        if let device {
            index = Int32(if_nametoindex(device))
            guard index > 0 else { throw NetlinkError("no interface '\(device)'") }
        }
        try add(MPTCPPathManager.Endpoint(id: id, address: address, port: port, flags: flags, interfaceIndex: index))
    }

    /// An endpoint as `edgepool paths endpoints` lists it: `ip mptcp endpoint`'s words, the
    /// interface by name.
    public static func describe(_ endpoint: MPTCPPathManager.Endpoint) -> String {
        var text = endpoint.description
        if endpoint.interfaceIndex != 0 {
            var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
            text += " dev " + (if_indextoname(UInt32(endpoint.interfaceIndex), &name) != nil
                ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "#\(endpoint.interfaceIndex)")
        }
        return text
    }
}
