/// A setting that cannot be used, named the way the user wrote it: both as the flag
/// (`--max-handle-length`) and as the configuration file's key (`maxHandleLength`).
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String

    public init(_ description: String) { self.description = description }

    /// "--max-handle-length (maxHandleLength) must be 1…1024".
    public init(setting key: String, _ problem: String) {
        self.init("\(Self.flag(key)) (\(key)) \(problem)")
    }

    /// The flag of a configuration key: `maxHandleLength` → `--max-handle-length`.
    public static func flag(_ key: String) -> String {
        var flag = "--"
        for character in key {
            if character.isUppercase {
                flag += "-" + character.lowercased()
            } else {
                flag.append(character)
            }
        }
        return flag
    }
}

extension ConfigurationError {
    /// Checks that `value` lies in `range`.
    public static func check<T: Comparable>(_ value: T?, in range: ClosedRange<T>, _ key: String) throws {
        guard let value else { return }
        guard range.contains(value) else { throw ConfigurationError(setting: key, "must be \(range.lowerBound)…\(range.upperBound), not \(value)") }
    }

    /// Checks that `value` is at least `minimum`.
    public static func check<T: Comparable>(_ value: T?, atLeast minimum: T, _ key: String) throws {
        guard let value else { return }
        guard value >= minimum else { throw ConfigurationError(setting: key, "must be at least \(minimum), not \(value)") }
    }
}
