/// What EdgePool's charts share: the plot area inside the margins, the y scale from zero, the
/// frame with its grid, ticks and axis labels, the legend, and SVG text escaping. Every
/// report's plot is drawn with these (no plotting tool to install).
struct ChartCanvas {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    let width: Double, height: Double
    let left = 72.0, right = 170.0, top = 44.0, bottom = 58.0
    /// The top of the y axis (a round number at or above the data's largest value).
    let yMax: Double

    init(width: Double, height: Double, observedMaximum: Double?, yMaximum: Double?) {
        self.width = width
        self.height = height
        let top = yMaximum ?? Self.niceCeiling(observedMaximum ?? 1)
        yMax = top > 0 && top.isFinite ? top : 1
    }

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }

    func y(_ value: Double) -> Double { top + plotHeight * (1 - min(max(value / yMax, 0), 1)) }

    /// The opening of the document: background, title, horizontal grid with y ticks, frame, labels.
    func open(title: String, xLabel: String, yLabel: String) -> String {
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left + plotWidth / 2)" y="24" text-anchor="middle" font-size="15" font-weight="bold">\(Self.escape(title))</text>

        """
        for tick in 0...5 {
            let value = yMax * Double(tick) / 5
            let yy = y(value)
            svg += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotWidth)\" y2=\"\(yy)\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(left - 8)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(Self.format(value))</text>\n"
        }
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 14)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        return svg
    }

    /// A tick with its label under the x axis at `x`.
    func xTick(_ x: Double, _ label: String) -> String {
        "<line x1=\"\(x)\" y1=\"\(top + plotHeight)\" x2=\"\(x)\" y2=\"\(top + plotHeight + 5)\" stroke=\"#333\"/>\n"
            + "<text x=\"\(x)\" y=\"\(top + plotHeight + 19)\" text-anchor=\"middle\">\(Self.escape(label))</text>\n"
    }

    /// The legend entry of series `index`: a line (or a filled box for bars) and the name.
    func legend(_ index: Int, _ name: String, box: Bool = false) -> String {
        let color = Self.color(index)
        let legendY = top + 12 + Double(index) * 20
        let mark = box
            ? "<rect x=\"\(left + plotWidth + 16)\" y=\"\(legendY - 6)\" width=\"24\" height=\"12\" fill=\"\(color)\" fill-opacity=\"0.7\"/>\n"
            : "<line x1=\"\(left + plotWidth + 16)\" y1=\"\(legendY)\" x2=\"\(left + plotWidth + 40)\" y2=\"\(legendY)\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
        return mark + "<text x=\"\(left + plotWidth + 46)\" y=\"\(legendY + 4)\">\(Self.escape(name))</text>\n"
    }

    /// An error bar from `low` to `high` at `x`.
    func errorBar(_ x: Double, low: Double, high: Double, color: String) -> String {
        "<line x1=\"\(x)\" y1=\"\(y(low))\" x2=\"\(x)\" y2=\"\(y(high))\" stroke=\"\(color)\"/>\n"
            + "<line x1=\"\(x - 4)\" y1=\"\(y(low))\" x2=\"\(x + 4)\" y2=\"\(y(low))\" stroke=\"\(color)\"/>\n"
            + "<line x1=\"\(x - 4)\" y1=\"\(y(high))\" x2=\"\(x + 4)\" y2=\"\(y(high))\" stroke=\"\(color)\"/>\n"
    }

    static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// The smallest of 1, 2, 2.5, 5 × a power of ten at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= value { magnitude *= 10 }
        while magnitude > value { magnitude /= 10 }
        for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    /// A step of 1, 2 or 5 × a power of ten that cuts `span` into about `parts`.
    static func niceStep(_ span: Double, parts: Double = 8) -> Double {
        guard span > 0, span.isFinite else { return 1 }
        let raw = span / parts
        var magnitude = 1.0
        while magnitude * 10 <= raw { magnitude *= 10 }
        while magnitude > raw { magnitude /= 10 }
        for step in [1.0, 2, 5, 10] where step * magnitude >= raw { return step * magnitude }
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
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
