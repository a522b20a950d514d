import Foundation

/// User names and passwords the gateway accepts (SOCKS5 username/password, HTTP
/// Proxy-Authorization Basic, from the configuration file).
public struct ProxyCredentials: Sendable, Hashable {
    private var passwords: [String: [UInt8]]

    public init(_ passwords: [String: String]) {
        self.passwords = passwords.mapValues { Array($0.utf8) }
    }

    public var isEmpty: Bool { passwords.isEmpty }

    /// Whether `password` is `user`'s. Compares in time independent of where the bytes differ.
    public func verify(user: String, password: [UInt8]) -> Bool {
        guard let expected = passwords[user] else { return false }
        var difference = UInt8(expected.count == password.count ? 0 : 1)
        for index in 0..<max(expected.count, password.count) {
            let a = index < expected.count ? expected[index] : 0
            let b = index < password.count ? password[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }

    /// Checks a `Proxy-Authorization` value ("Basic base64(user:password)"); returns the user.
    public func verify(proxyAuthorization value: String) -> String? {
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        guard let user = String(data: decoded[decoded.startIndex..<colon], encoding: .utf8) else { return nil }
        return verify(user: user, password: Array(decoded[(colon + 1)...])) ? user : nil
    }
}
