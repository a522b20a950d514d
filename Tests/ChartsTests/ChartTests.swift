import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Charts

/// The elements of an SVG document, parsed by Foundation's XML parser (which also proves the
/// text well-formed).
private final class SVGElements: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var texts: [String] = []
    private var inText = false

    static func parse(_ svg: String) throws -> SVGElements {
        let collector = SVGElements()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = collector
        guard parser.parse() else { throw parser.parserError ?? CocoaError(.coderReadCorrupt) }
        return collector
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append((name, attributes))
        if name == "text" { inText = true; texts.append("") }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { texts[texts.count - 1] += string } }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { if name == "text" { inText = false } }

    func all(_ name: String) -> [[String: String]] { elements.filter { $0.name == name }.map(\.attributes) }
}

@Suite("Charts")
struct ChartTests {
    @Test func aTimeSeriesHasOneLinePerSeriesAGapAtNaNAndAMarkerPerEvent() throws {
        let chart = TimeSeriesChart(
            title: "rates <wan1 & wan2>", xLabel: "time (s)", yLabel: "Mbit/s",
            series: [.init(name: "wan1 in", points: [(0, 10), (1, 20), (2, .nan), (3, 30)]),
                     .init(name: "wan2 in", points: [(0, 5), (1, 5), (2, 5), (3, 5)])],
            markers: [.init(x: 1.5, label: "wan1 down"), .init(x: 99, label: "outside the range")],
            xRange: 0...4)
        let svg = try SVGElements.parse(chart.render(width: 1000, height: 500))
        let paths = svg.all("path").compactMap { $0["d"] }
        #expect(paths.count == 2)
        #expect(paths[0].filter { $0 == "M" }.count == 2, "the NaN sample breaks the line: \(paths[0])")
        #expect(paths[1].filter { $0 == "M" }.count == 1)
        #expect(svg.texts.contains("rates <wan1 & wan2>"), "the title, escaped in the text and read back")
        #expect(svg.texts.contains("wan1 down") && !svg.texts.contains("outside the range"))
        // The marker sits at 1.5 of 0…4 across the plot (left margin 72, plot width 1000 − 72 − 170).
        let dashed = svg.all("line").filter { $0["stroke-dasharray"] != nil }
        #expect(dashed.count == 1)
        let markerX: Double = Double(dashed[0]["x1"] ?? "") ?? 0
        let expectedX: Double = 72 + 758 * 1.5 / 4
        #expect(abs(markerX - expectedX) < 0.01)
        // y from zero to the round 50 above 30: the 30 Mbit/s sample sits at 3/5 of the plot's
        // height (top margin 44, plot height 500 − 44 − 58).
        let last = paths[0].split(separator: " ").suffix(2).compactMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: "ML"))) }
        let expectedLast: [Double] = [72 + 758.0 * 3 / 4, 44 + 398.0 * (1 - 30.0 / 50)]
        #expect(last.count == 2 && zip(last, expectedLast).allSatisfy { abs($0 - $1) < 0.01 }, "\(paths[0])")
    }

    @Test func barsPerGroupAndSeriesWithTheirErrors() throws {
        let chart = BarChart(title: "goodput", yLabel: "Mbit/s", groups: ["Wi-Fi", "cellular", "MPTCP"],
                             series: [.init(name: "cubic", values: [18, 9, 25], errors: [1, 0, 2]),
                                      .init(name: "bbr", values: [19, 8, 26], errors: [0.5, 0.5, 0.5])])
        let svg = try SVGElements.parse(chart.render())
        let bars = svg.all("rect").filter { $0["fill-opacity"] == "0.7" && $0["stroke"] == "#333" }
        #expect(bars.count == 6, "one bar per group and series")
        let heights = bars.compactMap { Double($0["height"] ?? "") }
        #expect(abs(heights[1] / heights[0] - 19.0 / 18) < 1e-9, "heights in proportion to the values")
        // Error bars: three lines each, for the five non-zero errors.
        #expect(svg.all("line").filter { $0["stroke"] == "#222" }.count == 15)
        #expect(svg.texts.contains("cellular") && svg.texts.contains("bbr"))
    }

    @Test func roundNumbersForTheAxes() {
        #expect(ChartCanvas.niceCeiling(37) == 50)
        #expect(ChartCanvas.niceCeiling(0.23) == 0.25)
        #expect(ChartCanvas.niceCeiling(0) == 1)
        #expect(ChartCanvas.niceStep(60) == 10)
        #expect(ChartCanvas.niceStep(3) == 0.5)
        #expect(ChartCanvas.format(1_500_000) == "1.5M" && ChartCanvas.format(2_000) == "2k" && ChartCanvas.format(0.25) == "0.25")
    }
}
