/// Why a benchmark could not run (a helper that did not start, a flag it cannot use).
public struct BenchmarkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
