import Foundation
import NIOConcurrencyHelpers

/// One figure a benchmark measured, as `scripts/bench` compares it with the one recorded in
/// BENCHMARKS.json. A *ratio* is EdgePool against a baseline of its own in the same run
/// (throughput over the direct connection's, a resolution's cost over a baseline request's):
/// it carries from one machine to another, and it gates. A *peer* figure involves a peer
/// proxy (HAProxy, shadowsocks-libev, …), whose own rate swings by 2–4× between runs here: it
/// is shown, not gated. An *absolute* figure (events/s, µs) is context for this machine.
public struct BenchmarkFigure: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable { case ratio, peer, absolute }
    public enum Better: String, Codable, Sendable { case higher, lower }

    /// Unique and stable: `gateway tcp-tcp edgepool reverse throughput / direct`.
    public var name: String
    public var value: Double
    public var unit: String
    public var kind: Kind
    public var better: Better

    public init(_ name: String, _ value: Double, unit: String, kind: Kind, better: Better) {
        self.name = name
        self.value = value
        self.unit = unit
        self.kind = kind
        self.better = better
    }
}

/// Where the benchmarks of one process put their figures: `--figures FILE` on every
/// `edgepool bench` command appends them there as JSON lines.
public enum BenchmarkFigures {
    private static let output = NIOLockedValueBox<FileHandle?>(nil)

    /// Appends every figure recorded from now on to `path` (created when missing).
    public static func write(to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw BenchmarkError("cannot write the figures to '\(path)'") }
        handle.seekToEndOfFile()
        output.withLockedValue { $0 = handle }
    }

    /// Records a figure (nothing happens without ``write(to:)``; a non-finite value is left out).
    public static func record(_ figure: BenchmarkFigure) {
        guard figure.value.isFinite, let data = try? JSONEncoder().encode(figure) else { return }
        output.withLockedValue { handle in
            handle?.write(data)
            handle?.write(Data("\n".utf8))
        }
    }

    public static func record(_ name: String, _ value: Double, unit: String, kind: BenchmarkFigure.Kind, better: BenchmarkFigure.Better) {
        record(BenchmarkFigure(name, value, unit: unit, kind: kind, better: better))
    }
}
