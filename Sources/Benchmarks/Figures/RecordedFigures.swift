import Foundation

/// BENCHMARKS.json: the figures BENCHMARKS.md reports, each with the day it was measured and
/// the command that measured it, and the comparison of a new run with them.
public struct RecordedFigures: Codable, Sendable {
    public struct Entry: Codable, Hashable, Sendable {
        public var figure: BenchmarkFigure
        /// `YYYY-MM-DD`, and where (BENCHMARKS.md's section).
        public var measured: String
        public var command: String
        public init(figure: BenchmarkFigure, measured: String, command: String) {
            self.figure = figure
            self.measured = measured
            self.command = command
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public static func load(_ path: String) throws -> RecordedFigures {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchmarkError("cannot read '\(path)'") }
        do {
            return try JSONDecoder().decode(RecordedFigures.self, from: data)
        } catch {
            throw BenchmarkError("'\(path)' is not a figures file: \(error)")
        }
    }

    /// These entries with `figures` put in (replacing the ones of the same name, in place;
    /// new names at the end).
    public func recording(_ figures: [BenchmarkFigure], measured: String, command: String) -> RecordedFigures {
        var entries = self.entries
        for figure in figures {
            let entry = Entry(figure: figure, measured: measured, command: command)
            if let index = entries.firstIndex(where: { $0.figure.name == figure.name }) { entries[index] = entry } else { entries.append(entry) }
        }
        return RecordedFigures(entries: entries)
    }

    public func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (try encoder.encode(self) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }

    /// The JSON lines a run wrote with `--figures`; a figure measured more than once (scripts/bench
    /// runs every benchmark twice) keeps its best value, so that a regression is one that even
    /// the better of two runs shows.
    public static func measured(_ path: String) throws -> [BenchmarkFigure] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchmarkError("cannot read '\(path)'") }
        var byName: [String: BenchmarkFigure] = [:]
        var order: [String] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() where !line.isEmpty {
            guard let figure = try? JSONDecoder().decode(BenchmarkFigure.self, from: Data(line.utf8)) else {
                throw BenchmarkError("'\(path)' line \(number + 1) is not a figure")
            }
            guard let seen = byName[figure.name] else {
                order.append(figure.name)
                byName[figure.name] = figure
                continue
            }
            let better = figure.better == .higher ? figure.value > seen.value : figure.value < seen.value
            if better { byName[figure.name] = figure }
        }
        return order.compactMap { byName[$0] }
    }

    /// One row of the comparison.
    public struct Comparison: Hashable, Sendable {
        public var figure: BenchmarkFigure
        public var recorded: Entry?
        /// Now over recorded, turned so that above 1 is better (nil: nothing recorded).
        public var change: Double?
        /// A ratio figure worse than recorded by more than the tolerance.
        public var regressed: Bool
    }

    /// Each measured figure beside its recorded one. `tolerance` 0.35: a ratio figure 35 %
    /// worse than recorded is a regression (single runs on this 2-core machine vary by ±30 %;
    /// the best of two by less).
    public func compare(_ measured: [BenchmarkFigure], tolerance: Double = 0.35) -> [Comparison] {
        let recorded = Dictionary(entries.map { ($0.figure.name, $0) }, uniquingKeysWith: { _, last in last })
        return measured.map { figure in
            guard let entry = recorded[figure.name], entry.figure.value != 0, figure.value != 0 else {
                return Comparison(figure: figure, recorded: recorded[figure.name], change: nil, regressed: false)
            }
            let change = figure.better == .higher ? figure.value / entry.figure.value : entry.figure.value / figure.value
            return Comparison(figure: figure, recorded: entry, change: change, regressed: figure.kind == .ratio && change < 1 - tolerance)
        }
    }

    /// The comparison as a table: figure, now, recorded (and when), change, verdict.
    public static func table(_ rows: [Comparison], tolerance: Double = 0.35) -> [String] {
        func number(_ value: Double) -> String {
            abs(value) >= 100 ? String(format: "%.0f", value) : abs(value) >= 10 ? String(format: "%.1f", value) : String(format: "%.3g", value)
        }
        let width = min(max(rows.map(\.figure.name.count).max() ?? 10, 10), 72)
        var lines = ["figure".padding(toLength: width, withPad: " ", startingAt: 0) + "  " + "now".leftPadded(12) + "  " + "recorded".leftPadded(12)
                     + "  measured    change  (ratio figures gate; peer and absolute ones are context)"]
        for row in rows {
            let name = row.figure.name.count > width ? String(row.figure.name.prefix(width - 1)) + "…" : row.figure.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let now = (number(row.figure.value) + " " + row.figure.unit).leftPadded(12)
            let recorded = (row.recorded.map { number($0.figure.value) + " " + $0.figure.unit } ?? "–").leftPadded(12)
            let when = (row.recorded?.measured ?? "").padding(toLength: 10, withPad: " ", startingAt: 0)
            var change = row.change.map { String(format: "%.2f×", $0) } ?? "new"
            if row.regressed { change += "  WORSE" } else if row.figure.kind != .ratio, row.change != nil { change += "  (\(row.figure.kind.rawValue))" }
            lines.append("\(name)  \(now)  \(recorded)  \(when)  \(change)")
        }
        let worse = rows.filter(\.regressed)
        let percent = String(format: "%.0f %%", tolerance * 100)
        lines.append(worse.isEmpty ? "no ratio figure is more than \(percent) worse than recorded"
                                   : "\(worse.count) ratio figure(s) more than \(percent) worse than recorded: " + worse.map(\.figure.name).joined(separator: "; "))
        return lines
    }
}

