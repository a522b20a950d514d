/// Rates over time (the testbed's per-interface plots): a numeric x axis in seconds, one line
/// per series through its samples, and vertical dashed markers with a label for the moments
/// something happened (a link failed, a path came back). SVG text, no plotting tool needed.
public struct TimeSeriesChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// (x, y) in x order; a non-finite y is a gap.
        public var points: [(x: Double, y: Double)]
        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
    }

    /// A vertical line at `x` with its text.
    public struct Marker: Sendable {
        public var x: Double
        public var label: String
        public init(x: Double, label: String) {
            self.x = x
            self.label = label
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var markers: [Marker]
    /// The x range (nil: the data's, from zero).
    public var xRange: ClosedRange<Double>?
    public var yMaximum: Double?

    public init(title: String, xLabel: String, yLabel: String, series: [Series], markers: [Marker] = [],
                xRange: ClosedRange<Double>? = nil, yMaximum: Double? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.markers = markers
        self.xRange = xRange
        self.yMaximum = yMaximum
    }

    public func render(width: Double = 1000, height: Double = 500) -> String {
        let observed = series.flatMap { $0.points.map(\.y) }.filter { $0.isFinite }
        let canvas = ChartCanvas(width: width, height: height, observedMaximum: observed.max(), yMaximum: yMaximum)
        let xs = series.flatMap { $0.points.map(\.x) }.filter { $0.isFinite }
        let range = xRange ?? 0...max(xs.max() ?? 1, 1)
        let span = max(range.upperBound - range.lowerBound, 1e-9)
        func x(_ value: Double) -> Double { canvas.left + canvas.plotWidth * (min(max(value, range.lowerBound), range.upperBound) - range.lowerBound) / span }

        var svg = canvas.open(title: title, xLabel: xLabel, yLabel: yLabel)
        let step = ChartCanvas.niceStep(span)
        var tick = (range.lowerBound / step).rounded(.up) * step
        while tick <= range.upperBound + step * 1e-9 {
            svg += canvas.xTick(x(tick), ChartCanvas.format(tick))
            tick += step
        }
        for (index, marker) in markers.filter({ range.contains($0.x) }).enumerated() {
            let xx = x(marker.x)
            svg += "<line x1=\"\(xx)\" y1=\"\(canvas.top)\" x2=\"\(xx)\" y2=\"\(canvas.top + canvas.plotHeight)\" stroke=\"#666\" stroke-dasharray=\"5,4\"/>\n"
            // Beside the line at the top of the plot, staggered over three rows so that
            // neighbours do not overlap (horizontal: every SVG renderer places it the same).
            svg += "<text x=\"\(xx + 3)\" y=\"\(canvas.top + 12 + Double(index % 3) * 11)\" font-size=\"9\" fill=\"#444\">\(ChartCanvas.escape(marker.label))</text>\n"
        }
        for (index, s) in series.enumerated() {
            var path = ""
            var pen = false
            for point in s.points {
                guard point.x.isFinite, point.y.isFinite else { pen = false; continue }
                path += (pen ? " L" : (path.isEmpty ? "M" : " M")) + "\(x(point.x)) \(canvas.y(point.y))"
                pen = true
            }
            svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(ChartCanvas.color(index))\" stroke-width=\"1.6\"/>\n"
            svg += canvas.legend(index, s.name)
        }
        return svg + "</svg>\n"
    }
}
