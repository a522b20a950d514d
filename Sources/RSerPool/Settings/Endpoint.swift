import NIOCore

/// A host and port as settings write it: "127.0.0.1:3863", "[::1]:3863", "localhost:3863".
public struct Endpoint: Hashable, Sendable, Codable, LosslessStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (0...65535).contains(port) else { return nil }
            self.port = port
        } else {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                  (0...65535).contains(port) else { return nil }
            host = String(text[..<colon])
            self.port = port
        }
        if host.isEmpty { return nil }
    }

    /// How an endpoint is written, for error messages.
    public static let expectedForm = "HOST:PORT"

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The socket address: an IP address as is, a name resolved now.
    public func socketAddress() throws -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
    }

    public init(from decoder: Decoder) throws {
        self = try decodeSettingText(decoder, expected: Self.expectedForm, Self.init)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
