import Foundation
import Testing

/// EdgePool's netlink layer against the running kernel's mptcp_pm family, in a namespace the
/// test creates (and removes): `ip mptcp endpoint show` is the independent witness.
@Suite(.serialized) struct PathManagerKernelTests {
    @Test(.enabled(if: TestNamespace.unavailableReason == nil, "\(TestNamespace.unavailableReason ?? "")"))
    func endpointsAreAddedChangedAndDeletedThroughNetlink() async throws {
        let (a, b) = try await TestNamespace.pair()   // a: 10.77.0.1 on va (b holds the veth's other end)
        defer { withExtendedLifetime(b) {} }
        func edgepool(_ arguments: [String]) async throws -> (status: Int32, lines: [String]) {
            let process = try a.edgepool("paths", ["paths"] + arguments)
            let status = try await process.waitForExit()
            return (status, process.lines)
        }
        func witness() async throws -> [String] {
            let process = try a.run("ip-mptcp", TestNamespace.ipTool!, ["mptcp", "endpoint", "show"])
            _ = try await process.waitForExit()
            return process.lines.filter { !$0.isEmpty }
        }
        let add = try await edgepool(["endpoint", "add", "10.77.0.1", "--id", "7", "--flags", "subflow,backup", "--dev", "va"])
        #expect(add.status == 0, "\(add.lines)")
        let added = try await witness()
        #expect(added.count == 1 && added[0].contains("10.77.0.1 id 7 subflow backup dev va"), "\(added)")
        let listed = try await edgepool(["endpoints"])
        #expect(listed.status == 0 && listed.lines.contains("id 7 10.77.0.1 subflow,backup dev va"), "our decoding of the kernel's dump: \(listed.lines)")
        // MP_PRIO: the backup flag cleared.
        #expect(try await edgepool(["endpoint", "backup", "7", "--off"]).status == 0)
        let changed = try await witness()
        #expect(changed.count == 1 && changed[0].contains("id 7 subflow dev va"), "\(changed)")
        // The kernel's refusal comes back with its reason.
        let duplicate = try await edgepool(["endpoint", "add", "10.77.0.1", "--id", "7"])
        #expect(duplicate.status != 0 && duplicate.lines.contains { $0.contains("the kernel refused") }, "\(duplicate.lines)")
        #expect(try await edgepool(["endpoint", "delete", "7"]).status == 0)
        let deleted = try await witness()
        #expect(deleted.isEmpty, "\(deleted)")
        let missing = try await edgepool(["endpoint", "delete", "7"])
        #expect(missing.status != 0 && missing.lines.contains { $0.contains("the kernel refused") }, "\(missing.lines)")
    }
}
