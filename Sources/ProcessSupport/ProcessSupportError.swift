/// What went wrong starting, reading or reaching a child process, in words.
public struct ProcessSupportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
