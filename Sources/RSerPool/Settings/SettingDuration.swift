import Foundation
import NIOCore

/// A duration as settings write it, on the command line and in configuration files: "5s",
/// "250ms", "1.5s", "2m", "1h", "500us"; "0" needs no unit (off).
public struct SettingDuration: Hashable, Sendable, Codable, LosslessStringConvertible {
    public var amount: TimeAmount

    public init(_ amount: TimeAmount) { self.amount = amount }

    public init?(_ text: String) {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "0" {
            amount = .zero
            return
        }
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite, value * scale < 9.2e18 else { return nil }
            amount = .nanoseconds(Int64(value * scale))
            return
        }
        return nil
    }

    /// How a duration is written, for error messages.
    public static let expectedForm = "a duration such as 5s or 250ms"

    public var description: String {
        let ns = amount.nanoseconds
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        return "\(ns / 1_000)us"
    }

    /// Seconds as a floating-point number.
    public var seconds: Double { Double(amount.nanoseconds) / 1e9 }

    public init(from decoder: Decoder) throws {
        self = try decodeSettingText(decoder, expected: Self.expectedForm, Self.init)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Decodes a setting written as a string (durations, endpoints), with an error that says
/// what form was expected.
func decodeSettingText<T>(_ decoder: Decoder, expected: String, _ parse: (String) -> T?) throws -> T {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let value = parse(text) else {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not \(expected)"))
    }
    return value
}
