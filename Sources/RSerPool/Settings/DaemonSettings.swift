import Foundation
import RSerPoolWire

/// A daemon's settings as a configuration file and the command line hold them: every
/// setting optional (nil: not given), JSON keys the property names. The CLI fills one value
/// from its flags and lays it over the file's (``merged(over:)``); the daemon's
/// `configuration()` then checks every value and applies the defaults — so a library user
/// gets exactly the checks the CLI gets.
public protocol DaemonSettings: Codable, Sendable {
    /// No setting given.
    init()
}

extension DaemonSettings {
    /// The keys a configuration file may hold (the stored properties).
    public static var keys: Set<String> {
        Set(Mirror(reflecting: Self()).children.compactMap(\.label))
    }

    /// Reads a JSON configuration file. Unknown keys are an error (a typo must not be
    /// ignored); so are values of the wrong form, named by their key. `allowed` narrows the
    /// keys (a daemon mode that has no use for some).
    public static func load(file path: String, allowing allowed: Set<String>? = nil) throws -> Self {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read the configuration file '\(path)'")
        }
        return try decode(data, source: path, allowing: allowed)
    }

    /// Decodes a JSON configuration text; `source` names it in errors.
    public static func decode(_ data: Data, source: String, allowing allowed: Set<String>? = nil) throws -> Self {
        guard let object = try? JSONSerialization.jsonObject(with: data), let dictionary = object as? [String: Any] else {
            throw ConfigurationError("\(source): not a JSON object")
        }
        let keys = allowed ?? Self.keys
        let unknown = Set(dictionary.keys).subtracting(keys)
        if !unknown.isEmpty {
            throw ConfigurationError("\(source): unknown key(s) \(unknown.sorted().joined(separator: ", ")); known: \(keys.sorted().joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(Self.self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigurationError("\(source): \(path.isEmpty ? "" : "'\(path)': ")\(context.debugDescription)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ConfigurationError("\(source): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type: \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw ConfigurationError("\(source): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has no value")
        } catch {
            throw ConfigurationError("\(source): \(error)")
        }
    }

    /// These settings laid over `base`: every setting given here wins, the others come from
    /// `base` (flags over a configuration file).
    public func merged(over base: Self) -> Self {
        do {
            let encoder = JSONEncoder()
            guard var merged = try JSONSerialization.jsonObject(with: encoder.encode(base)) as? [String: Any],
                  let top = try JSONSerialization.jsonObject(with: encoder.encode(self)) as? [String: Any] else { return self }
            merged.merge(top) { _, given in given }
            return try JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch {
            // Both values encode and decode by construction.
            preconditionFailure("settings do not round-trip through JSON: \(error)")
        }
    }
}

/// Parsing settings written as text.
public enum SettingText {
    /// A non-zero 32-bit identifier: decimal, `0x…` or `$…` (hexadecimal, as RSerPool prints them).
    public static func identifier(_ text: String, _ key: String) throws -> UInt32 {
        let hex = text.hasPrefix("0x") || text.hasPrefix("$")
        let digits = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text.hasPrefix("$") ? String(text.dropFirst()) : text
        guard let value = UInt32(digits, radix: hex ? 16 : 10), value != 0 else {
            throw ConfigurationError(setting: key, "'\(text)' is not a non-zero 32-bit identifier (decimal, 0x… or $…)")
        }
        return value
    }

    /// An IP address (an interface's, for multicast).
    public static func address(_ text: String, _ key: String) throws -> IPAddress {
        guard let address = IPAddress(text) else { throw ConfigurationError(setting: key, "'\(text)' is not an address") }
        return address
    }
}
