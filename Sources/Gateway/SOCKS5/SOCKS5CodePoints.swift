/// SOCKS5 code points (RFC 1928, RFC 1929) as open structs: a value the gateway does not
/// know still round-trips and can be named in a log line.

/// An authentication method a client offers in its greeting (RFC 1928 §3).
public struct SOCKSAuthenticationMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let noAuthentication = Self(rawValue: 0x00)
    public static let gssapi = Self(rawValue: 0x01)
    /// RFC 1929.
    public static let usernamePassword = Self(rawValue: 0x02)
    /// The server's answer when none of the offered methods is acceptable.
    public static let noAcceptableMethods = Self(rawValue: 0xFF)

    public var description: String {
        switch self {
        case .noAuthentication: "no-authentication"
        case .gssapi: "gssapi"
        case .usernamePassword: "username/password"
        case .noAcceptableMethods: "no-acceptable-methods"
        default: "method-0x" + String(rawValue, radix: 16)
        }
    }
}

/// The command of a SOCKS5 request (RFC 1928 §4).
public struct SOCKSCommand: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let connect = Self(rawValue: 0x01)
    public static let bind = Self(rawValue: 0x02)
    public static let udpAssociate = Self(rawValue: 0x03)

    public var description: String {
        switch self {
        case .connect: "CONNECT"
        case .bind: "BIND"
        case .udpAssociate: "UDP ASSOCIATE"
        default: "command-0x" + String(rawValue, radix: 16)
        }
    }
}

/// The REP field of a SOCKS5 reply (RFC 1928 §6).
public struct SOCKSReplyCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let succeeded = Self(rawValue: 0x00)
    public static let generalFailure = Self(rawValue: 0x01)
    public static let notAllowedByRuleset = Self(rawValue: 0x02)
    public static let networkUnreachable = Self(rawValue: 0x03)
    public static let hostUnreachable = Self(rawValue: 0x04)
    public static let connectionRefused = Self(rawValue: 0x05)
    public static let ttlExpired = Self(rawValue: 0x06)
    public static let commandNotSupported = Self(rawValue: 0x07)
    public static let addressTypeNotSupported = Self(rawValue: 0x08)

    public var description: String {
        switch self {
        case .succeeded: "succeeded"
        case .generalFailure: "general SOCKS server failure"
        case .notAllowedByRuleset: "connection not allowed by ruleset"
        case .networkUnreachable: "network unreachable"
        case .hostUnreachable: "host unreachable"
        case .connectionRefused: "connection refused"
        case .ttlExpired: "TTL expired"
        case .commandNotSupported: "command not supported"
        case .addressTypeNotSupported: "address type not supported"
        default: "reply-0x" + String(rawValue, radix: 16)
        }
    }
}

/// The ATYP field (RFC 1928 §5).
public struct SOCKSAddressType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let ipv4 = Self(rawValue: 0x01)
    public static let domainName = Self(rawValue: 0x03)
    public static let ipv6 = Self(rawValue: 0x04)
}
