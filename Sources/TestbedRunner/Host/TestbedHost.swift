import Foundation
import Testbed

#if canImport(Glibc)
import Glibc
#endif

/// Bringing a testbed's topology up on this host.
public enum TestbedHost {
    /// Reads and checks a topology file (its name defaults to the file's).
    public static func loadTopology(_ path: String) throws -> Topology {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TestbedError("cannot read '\(path)'") }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        do {
            return try TopologyParser.parse(text, defaultName: name)
        } catch {
            throw TestbedError("\(path): \(error)")
        }
    }

    /// Testbeds need root (network namespaces) and iproute2.
    public static func requireRoot() throws {
        guard getuid() == 0 else { throw TestbedError("testbeds need root (network namespaces)") }
        guard Shell.ipTool != nil else { throw TestbedError("no ip tool: install iproute2") }
    }

    /// Runs a topology's plan; on a failure or Ctrl-C removes what was created and throws.
    public static func bringUp(_ topology: Topology, file: String) throws -> TopologyPlan {
        let plan: TopologyPlan
        do {
            plan = try TopologyPlan(topology, capabilities: .init(netem: Netem.available(), emulator: Netem.emulatorCommand, pathManager: Netem.pathManagerCommand))
        } catch {
            throw TestbedError("\(file): \(error)")
        }
        if let existing = Shell.namespaces(prefix: TopologyPlan.namespacePrefix + topology.name + "-").first {
            throw TestbedError("testbed '\(topology.name)' is up already (\(existing)); `edgepool testbed down \(topology.name)` first")
        }
        try CongestionControls.allow(topology, file: file)
        Interrupts.onInterrupt { Teardown.remove(topology: topology.name) }
        for step in plan.up {
            if Interrupts.received {
                Teardown.remove(topology: topology.name)
                throw TestbedError("interrupted; removed what was created")
            }
            let result = step.background ? Shell.start(step.arguments, log: "/tmp/\(step.arguments[3]).log") : Shell.run(step.arguments)
            guard result.status == 0 else {
                if step.mayFail {
                    FileHandle.standardError.write(Data("warning: \(step) failed (\(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))); going on\n".utf8))
                    continue
                }
                Teardown.remove(topology: topology.name)
                throw TestbedError("\(step)\n  failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))\nremoved what was created")
            }
        }
        return plan
    }
}
