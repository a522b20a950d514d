/// Why a testbed could not be brought up, played or taken down, in words for the operator.
public struct TestbedError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
