import ArgumentParser
import Foundation
import Logging
import NIOCore
import RSerPool
import RSerPoolWire

/// A setting written as text both on the command line and in configuration files.
protocol TextualSetting: ExpressibleByArgument, Codable, CustomStringConvertible {
    /// How the value is written, for error messages.
    static var expectedForm: String { get }
}

extension TextualSetting {
    init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = Self(argument: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not \(Self.expectedForm)"))
        }
        self = parsed
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A duration on the command line: "5s", "250ms", "1.5s", "2m".
struct Duration: TextualSetting, Sendable {
    var amount: TimeAmount

    init(_ amount: TimeAmount) { self.amount = amount }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "0" {   // zero needs no unit ("off")
            amount = .zero
            return
        }
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            amount = .nanoseconds(Int64(value * scale))
            return
        }
        return nil
    }

    static let expectedForm = "a duration such as 5s or 250ms"

    var description: String {
        let ns = amount.nanoseconds
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        return "\(ns / 1_000_000)ms"
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// An address with port on the command line: "127.0.0.1:3863", "[::1]:3863", "localhost:3863".
struct Endpoint: TextualSetting, Sendable {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(argument: String) {
        if argument.hasPrefix("["), let close = argument.firstIndex(of: "]") {
            host = String(argument[argument.index(after: argument.startIndex)..<close])
            let rest = argument[argument.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (0...65535).contains(port) else { return nil }
            self.port = port
        } else {
            guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
                  (0...65535).contains(port) else { return nil }
            host = String(argument[..<colon])
            self.port = port
        }
        if host.isEmpty { return nil }
    }

    static let expectedForm = "HOST:PORT"

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func socketAddress() throws -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
    }
}

extension TransportProtocol: ExpressibleByArgument {}
extension DemoService: ExpressibleByArgument {}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Options every daemon shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level?

    @Option(name: .long, help: ArgumentHelp("A JSON file with the same settings as the flags (flags win).", valueName: "file"))
    var config: String?
}

/// Reads a JSON configuration file into `T`, with errors that name the file and the key.
func loadConfigurationFile<T: Decodable>(_ path: String?, as type: T.Type) throws -> T? {
    guard let path else { return nil }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the configuration file '\(path)'")
    }
    do {
        let decoder = JSONDecoder()
        return try decoder.decode(T.self, from: data)
    } catch let DecodingError.keyNotFound(key, _) {
        throw ValidationError("\(path): missing key '\(key.stringValue)'")
    } catch let DecodingError.dataCorrupted(context) {
        let where_ = context.codingPath.map(\.stringValue).joined(separator: ".")
        throw ValidationError("\(path): \(where_.isEmpty ? "" : "'\(where_)': ")\(context.debugDescription)")
    } catch let DecodingError.typeMismatch(_, context) {
        throw ValidationError("\(path): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type: \(context.debugDescription)")
    } catch {
        throw ValidationError("\(path): \(error)")
    }
}

/// Rejects unknown keys in a JSON configuration file (a typo must not be silently ignored).
func checkConfigurationKeys(_ path: String?, allowed: Set<String>) throws {
    guard let path, let data = FileManager.default.contents(atPath: path),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
    let unknown = Set(object.keys).subtracting(allowed)
    if !unknown.isEmpty {
        throw ValidationError("\(path): unknown key(s) \(unknown.sorted().joined(separator: ", ")); known: \(allowed.sorted().joined(separator: ", "))")
    }
}

func parsePolicy(name: String, load: Double, increment: Double, degradation: Double, weight: UInt32, priority: UInt32) throws -> PoolPolicy {
    guard let type = PolicyType(name: name) else {
        throw ValidationError("unknown policy '\(name)'; known: \(PolicyType.implemented.map(\.1).joined(separator: ", "))")
    }
    for (label, value) in [("load", load), ("increment", increment), ("degradation", degradation)] where !(0...1).contains(value) {
        throw ValidationError("--\(label) must be a fraction between 0 and 1, not \(value)")
    }
    let l = PoolPolicy.load(fraction: load), i = PoolPolicy.load(fraction: increment), d = PoolPolicy.load(fraction: degradation)
    switch type {
    case .roundRobin, .random: return PoolPolicy(type: type)
    case .weightedRoundRobin, .weightedRandom: return PoolPolicy(type: type, values: [weight])
    case .priority: return PoolPolicy(type: type, values: [priority])
    case .leastUsed, .randomizedLeastUsed: return PoolPolicy(type: type, values: [l])
    case .leastUsedWithDegradation, .randomizedLeastUsedWithDegradation: return PoolPolicy(type: type, values: [l, d])
    case .priorityLeastUsed, .randomizedPriorityLeastUsed: return PoolPolicy(type: type, values: [l, i])
    default: return PoolPolicy(type: type, values: [l, i, d])
    }
}

func parseIdentifier(_ text: String) throws -> UInt32 {
    let digits = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text.hasPrefix("$") ? String(text.dropFirst()) : text
    guard let value = UInt32(digits, radix: text.hasPrefix("0x") || text.hasPrefix("$") ? 16 : 10), value != 0 else {
        throw ValidationError("'\(text)' is not a non-zero 32-bit identifier (decimal, 0x… or $…)")
    }
    return value
}
