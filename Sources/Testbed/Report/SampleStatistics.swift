/// Mean, median, standard deviation and quantiles of repeated measurements.
public struct SampleStatistics: Hashable, Sendable {
    public let values: [Double]

    public init(_ values: [Double]) {
        self.values = values.sorted()
    }

    public var count: Int { values.count }
    public var mean: Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
    public var median: Double { quantile(0.5) }
    public var minimum: Double { values.first ?? .nan }
    public var maximum: Double { values.last ?? .nan }

    /// Sample standard deviation (n − 1); 0 for a single value.
    public var standardDeviation: Double {
        guard values.count > 1 else { return values.isEmpty ? .nan : 0 }
        let mean = mean
        return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }

    /// Linear interpolation between the closest ranks; `q` in 0…1.
    public func quantile(_ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let position = min(max(q, 0), 1) * Double(values.count - 1)
        let lower = Int(position), upper = min(lower + 1, values.count - 1)
        return values[lower] + (position - Double(lower)) * (values[upper] - values[lower])
    }
}
