/// Grouped bars with error bars (the access-aggregation experiment: goodput per path, one bar
/// per congestion control, mean ± standard deviation). SVG text, no plotting tool needed.
public struct BarChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// One value per group, with an optional ± error.
        public var values: [Double]
        public var errors: [Double]
        public init(name: String, values: [Double], errors: [Double] = []) {
            self.name = name
            self.values = values
            self.errors = errors
        }
    }

    public var title: String
    public var yLabel: String
    public var groups: [String]
    public var series: [Series]

    public init(title: String, yLabel: String, groups: [String], series: [Series]) {
        self.title = title
        self.yLabel = yLabel
        self.groups = groups
        self.series = series
    }

    public func render(width: Double = 900, height: Double = 450) -> String {
        let observed = series.flatMap { s in s.values.indices.map { s.values[$0] + (s.errors.indices.contains($0) ? s.errors[$0] : 0) } }.filter { $0.isFinite }
        let canvas = ChartCanvas(width: width, height: height, observedMaximum: observed.max(), yMaximum: nil)
        var svg = canvas.open(title: title, xLabel: "", yLabel: yLabel)
        let groupWidth = canvas.plotWidth / Double(max(groups.count, 1))
        let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
        for (group, name) in groups.enumerated() {
            let start = canvas.left + groupWidth * Double(group) + groupWidth * 0.1
            svg += canvas.xTick(start + groupWidth * 0.4, name)
            for (index, s) in series.enumerated() where group < s.values.count && s.values[group].isFinite {
                let value = s.values[group], color = ChartCanvas.color(index)
                let x = start + barWidth * Double(index)
                svg += "<rect x=\"\(x + 1)\" y=\"\(canvas.y(value))\" width=\"\(barWidth - 2)\" height=\"\(canvas.y(0) - canvas.y(value))\" fill=\"\(color)\" fill-opacity=\"0.7\" stroke=\"#333\" stroke-width=\"0.5\"/>\n"
                if group < s.errors.count, s.errors[group] > 0, s.errors[group].isFinite {
                    svg += canvas.errorBar(x + barWidth / 2, low: max(0, value - s.errors[group]), high: value + s.errors[group], color: "#222")
                }
            }
        }
        for (index, s) in series.enumerated() { svg += canvas.legend(index, s.name, box: true) }
        return svg + "</svg>\n"
    }
}
