import Foundation
import PathManager

/// A path's egress cap carried out with tc: a token bucket filter as the root qdisc of the
/// path's interface, with a handle of its own (`edc0:`) so that it is known again. A device
/// whose root qdisc somebody chose (a shaper, netem, a testbed's link emulation) is left
/// alone and the path manager refuses to start — replacing it would silently undo theirs.
enum PathRateCap {
    static let handle = "edc0:"
    static let tcTool = ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Puts the cap on `path`'s interface.
    static func apply(_ cap: TokenBucketShaping, on interface: String) throws(PathManagerError) {
        guard let root = try rootQdisc(interface) else { throw PathManagerError("rate= on \(interface): cannot read its qdisc (tc qdisc show dev \(interface))") }
        guard root.isDefault || root.handle == handle else {
            throw PathManagerError("rate= on \(interface): it already has a root qdisc of its own (\(root.kind) \(root.handle)); the path manager does not replace it. "
                                   + "Remove it (tc qdisc del dev \(interface) root) or drop rate= from the path.")
        }
        let result = try tc(["qdisc", "replace", "dev", interface, "root", "handle", handle] + cap.tbfParameters)
        guard result.status == 0 else { throw PathManagerError("rate= on \(interface): tc refused: \(result.output)") }
    }

    /// Takes the cap off again (only if it is still ours); the kernel's default comes back.
    static func remove(from interface: String) {
        guard let root = try? rootQdisc(interface), root.handle == handle else { return }
        _ = try? tc(["qdisc", "del", "dev", interface, "root"])
    }

    private static func rootQdisc(_ interface: String) throws(PathManagerError) -> TokenBucketShaping.RootQdisc? {
        let result = try tc(["qdisc", "show", "dev", interface, "root"])
        return result.status == 0 ? TokenBucketShaping.RootQdisc(tcOutput: result.output) : nil
    }

    private static func tc(_ arguments: [String]) throws(PathManagerError) -> (status: Int32, output: String) {
        guard let tcTool else { throw PathManagerError("rate= needs tc, which is not installed (Debian: iproute2)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tcTool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { throw PathManagerError("cannot run \(tcTool): \(error)") }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
