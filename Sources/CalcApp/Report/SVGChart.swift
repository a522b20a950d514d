/// A small line chart as SVG text: categorical x axis, linear y axis from zero, one line per
/// series with markers, optional error bars, a legend. Enough for the experiment's plots
/// without a plotting dependency.
public struct SVGChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// y per category, with optional (low, high) bars; nil values are gaps.
        public var values: [Double?]
        public var bars: [(low: Double, high: Double)?]
        public init(name: String, values: [Double?], bars: [(low: Double, high: Double)?] = []) {
            self.name = name
            self.values = values
            self.bars = bars
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var categories: [String]
    public var series: [Series]
    public var yMaximum: Double?

    public init(title: String, xLabel: String, yLabel: String, categories: [String], series: [Series], yMaximum: Double? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.categories = categories
        self.series = series
        self.yMaximum = yMaximum
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    public func render(width: Double = 720, height: Double = 420) -> String {
        let left = 72.0, right = 170.0, top = 44.0, bottom = 58.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let observed = series.flatMap { s in s.values.compactMap { $0 } + s.bars.compactMap { $0?.high } }.filter { $0.isFinite }
        let top_ = yMaximum ?? Self.niceCeiling(observed.max() ?? 1)
        let yMax = top_ > 0 ? top_ : 1
        func x(_ index: Int) -> Double {
            categories.count > 1 ? left + plotWidth * Double(index) / Double(categories.count - 1) : left + plotWidth / 2
        }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - min(max(value / yMax, 0), 1)) }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left + plotWidth / 2)" y="24" text-anchor="middle" font-size="15" font-weight="bold">\(Self.escape(title))</text>

        """
        // Grid and y ticks.
        for tick in 0...5 {
            let value = yMax * Double(tick) / 5
            let yy = y(value)
            svg += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotWidth)\" y2=\"\(yy)\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(left - 8)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(Self.format(value))</text>\n"
        }
        for (index, category) in categories.enumerated() {
            svg += "<line x1=\"\(x(index))\" y1=\"\(top + plotHeight)\" x2=\"\(x(index))\" y2=\"\(top + plotHeight + 5)\" stroke=\"#333\"/>\n"
            svg += "<text x=\"\(x(index))\" y=\"\(top + plotHeight + 19)\" text-anchor=\"middle\">\(Self.escape(category))</text>\n"
        }
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 14)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"

        for (seriesIndex, s) in series.enumerated() {
            let color = Self.palette[seriesIndex % Self.palette.count]
            var path = ""
            for (index, value) in s.values.enumerated() {
                guard let value, value.isFinite else { continue }
                path += (path.isEmpty ? "M" : " L") + "\(x(index)) \(y(value))"
            }
            svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            for (index, value) in s.values.enumerated() {
                guard let value, value.isFinite else { continue }
                if index < s.bars.count, let bar = s.bars[index], bar.low.isFinite, bar.high.isFinite {
                    let xx = x(index) + Double(seriesIndex - series.count / 2) * 3
                    svg += "<line x1=\"\(xx)\" y1=\"\(y(bar.low))\" x2=\"\(xx)\" y2=\"\(y(bar.high))\" stroke=\"\(color)\"/>\n"
                    svg += "<line x1=\"\(xx - 4)\" y1=\"\(y(bar.low))\" x2=\"\(xx + 4)\" y2=\"\(y(bar.low))\" stroke=\"\(color)\"/>\n"
                    svg += "<line x1=\"\(xx - 4)\" y1=\"\(y(bar.high))\" x2=\"\(xx + 4)\" y2=\"\(y(bar.high))\" stroke=\"\(color)\"/>\n"
                }
                svg += "<circle cx=\"\(x(index))\" cy=\"\(y(value))\" r=\"3.5\" fill=\"\(color)\"/>\n"
            }
            let legendY = top + 12 + Double(seriesIndex) * 20
            svg += "<line x1=\"\(left + plotWidth + 16)\" y1=\"\(legendY)\" x2=\"\(left + plotWidth + 40)\" y2=\"\(legendY)\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            svg += "<text x=\"\(left + plotWidth + 46)\" y=\"\(legendY + 4)\">\(Self.escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= value { magnitude *= 10 }
        while magnitude > value { magnitude /= 10 }
        for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    static func format(_ value: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 1_000_000 { return trimmed(value / 1_000_000) + "M" }
        if abs(value) >= 1_000 { return trimmed(value / 1_000) + "k" }
        return trimmed(value)
    }

    static func trimmed(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Substring(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
