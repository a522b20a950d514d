import Benchmarks
import Foundation
import Testing

/// The comparison scripts/bench prints: figures against BENCHMARKS.json.
@Suite struct RecordedFiguresTests {
    static let recorded = RecordedFigures(entries: [
        .init(figure: BenchmarkFigure("gateway tcp-tcp edgepool reverse: throughput / direct", 0.80, unit: "×", kind: .ratio, better: .higher),
              measured: "2026-12-01", command: "scripts/bench"),
        .init(figure: BenchmarkFigure("registrar 10000 PEs: resolution cost / a baseline request's", 1.5, unit: "×", kind: .ratio, better: .lower),
              measured: "2026-12-01", command: "scripts/bench"),
        .init(figure: BenchmarkFigure("simulator default sweep: events/s per core", 1_000_000, unit: "/s", kind: .absolute, better: .higher),
              measured: "2026-11-30", command: "scripts/bench"),
        .init(figure: BenchmarkFigure("gateway tcp-tcp pair: edgepool / shadowsocks-libev throughput", 5, unit: "×", kind: .peer, better: .higher),
              measured: "2026-12-01", command: "scripts/bench"),
    ])

    @Test func ratioFiguresGateEitherWayTheyImproveAbsoluteOnesDoNot() {
        let rows = Self.recorded.compare([
            BenchmarkFigure("gateway tcp-tcp edgepool reverse: throughput / direct", 0.40, unit: "×", kind: .ratio, better: .higher),
            BenchmarkFigure("registrar 10000 PEs: resolution cost / a baseline request's", 1.6, unit: "×", kind: .ratio, better: .lower),
            BenchmarkFigure("simulator default sweep: events/s per core", 400_000, unit: "/s", kind: .absolute, better: .higher),
            BenchmarkFigure("a figure nobody recorded", 3, unit: "×", kind: .ratio, better: .higher),
            BenchmarkFigure("gateway tcp-tcp pair: edgepool / shadowsocks-libev throughput", 1.5, unit: "×", kind: .peer, better: .higher),
        ])
        #expect(rows.map(\.regressed) == [true, false, false, false, false],
                "0.40 vs 0.80 is 50 % worse; 1.6 vs 1.5 (lower is better) 6 %; absolute, peer and new figures never gate")
        #expect(abs((rows[1].change ?? 0) - 1.5 / 1.6) < 1e-12, "for a lower-is-better figure the change is recorded / now")
        #expect(rows[3].recorded == nil && rows[3].change == nil)
        let table = RecordedFigures.table(rows)
        #expect(table.contains { $0.contains("WORSE") && $0.contains("2026-12-01") })
        #expect(table.last == "1 ratio figure(s) more than 35 % worse than recorded: gateway tcp-tcp edgepool reverse: throughput / direct")
    }

    @Test func aRunsFiguresFileAndRecordingANewBaseline() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("figures-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BenchmarkFigures.write(to: path)
        BenchmarkFigures.record("simulator default sweep: events/s per core", 900_000, unit: "/s", kind: .absolute, better: .higher)
        BenchmarkFigures.record("left out", .nan, unit: "×", kind: .ratio, better: .higher)
        BenchmarkFigures.record("new one", 2.5, unit: "×", kind: .ratio, better: .higher)
        BenchmarkFigures.record("new one", 2, unit: "×", kind: .ratio, better: .higher)
        BenchmarkFigures.record("a latency", 30, unit: "µs", kind: .absolute, better: .lower)
        BenchmarkFigures.record("a latency", 20, unit: "µs", kind: .absolute, better: .lower)
        let measured = try RecordedFigures.measured(path)
        #expect(measured.map(\.name) == ["simulator default sweep: events/s per core", "new one", "a latency"], "NaN left out")
        #expect(measured[1].value == 2.5 && measured[2].value == 20, "a figure measured twice keeps its better value, whichever way is better")
        let updated = Self.recorded.recording(measured, measured: "2026-12-02", command: "scripts/bench")
        #expect(updated.entries.count == 6)
        #expect(updated.entries[2].figure.value == 900_000 && updated.entries[2].measured == "2026-12-02", "replaced in place")
        #expect(updated.entries[4].figure.name == "new one")
        try "not json\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: BenchmarkError.self) { try RecordedFigures.measured(path) }
    }
}
