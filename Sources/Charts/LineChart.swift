/// A line chart over categories (the simulation's and the live sweep's plots: one point per
/// number of users): categorical x axis, linear y axis from zero, one line per series with
/// markers, optional error bars, a legend. SVG text, no plotting tool needed.
public struct LineChart: Sendable {
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

    public func render(width: Double = 720, height: Double = 420) -> String {
        let observed = series.flatMap { s in s.values.compactMap { $0 } + s.bars.compactMap { $0?.high } }.filter { $0.isFinite }
        let canvas = ChartCanvas(width: width, height: height, observedMaximum: observed.max(), yMaximum: yMaximum)
        func x(_ index: Int) -> Double {
            categories.count > 1 ? canvas.left + canvas.plotWidth * Double(index) / Double(categories.count - 1) : canvas.left + canvas.plotWidth / 2
        }
        var svg = canvas.open(title: title, xLabel: xLabel, yLabel: yLabel)
        for (index, category) in categories.enumerated() { svg += canvas.xTick(x(index), category) }
        for (seriesIndex, s) in series.enumerated() {
            let color = ChartCanvas.color(seriesIndex)
            var path = ""
            for (index, value) in s.values.enumerated() {
                guard let value, value.isFinite else { continue }
                path += (path.isEmpty ? "M" : " L") + "\(x(index)) \(canvas.y(value))"
            }
            svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            for (index, value) in s.values.enumerated() {
                guard let value, value.isFinite else { continue }
                if index < s.bars.count, let bar = s.bars[index], bar.low.isFinite, bar.high.isFinite {
                    svg += canvas.errorBar(x(index) + Double(seriesIndex - series.count / 2) * 3, low: bar.low, high: bar.high, color: color)
                }
                svg += "<circle cx=\"\(x(index))\" cy=\"\(canvas.y(value))\" r=\"3.5\" fill=\"\(color)\"/>\n"
            }
            svg += canvas.legend(seriesIndex, s.name)
        }
        return svg + "</svg>\n"
    }
}
