import NIOCore

/// The server side of a SOCKS5 handshake (RFC 1928, RFC 1929) as a state machine over bytes:
/// no sockets, no clocks. Feed it what the client sent; it says what to send back, when to
/// connect, and when to give up.
///
/// ```swift
/// var handshake = SOCKS5ServerHandshake(credentials: nil)
/// loop: while true {
///     switch handshake.process(&received) {
///     case .needMoreData: break loop                     // wait for the next read
///     case .send(let bytes): write(bytes)                // method selection / auth status
///     case .connect(let destination, _): connect(destination); break loop
///     case .associate(let client, _): openUDPRelay(for: client); break loop
///     case .reject(let reply, let failure): write(reply); close(failure); break loop
///     }
/// }
/// // later: write(handshake.connected(boundTo: local)) or write(handshake.connectFailed(.hostUnreachable));
/// // for UDP ASSOCIATE write(handshake.connected(boundTo: relayAddress))
/// ```
public struct SOCKS5ServerHandshake: Sendable {
    public enum Action: Sendable, Equatable {
        /// The message is incomplete; read more.
        case needMoreData
        /// Send these bytes and go on processing.
        case send(ByteBuffer)
        /// The request is complete: connect to the destination. Bytes the client sent after
        /// the request stay in the buffer and belong to the relayed stream.
        case connect(ProxyDestination, user: String?)
        /// A UDP ASSOCIATE request (only when UDP is allowed): open a UDP relay. The
        /// destination is where the client says it will send from (often 0.0.0.0:0).
        case associate(ProxyDestination, user: String?)
        /// Send the reply (if any), log the failure and close.
        case reject(ByteBuffer?, SOCKS5HandshakeFailure)
    }

    enum State: Sendable {
        case awaitingGreeting
        case awaitingCredentials
        case awaitingRequest(user: String?)
        case connecting
        case done
    }

    private var state: State = .awaitingGreeting
    private let credentials: ProxyCredentials?
    private let allowsUDP: Bool

    /// - Parameters:
    ///   - credentials: nil accepts clients without authentication; otherwise the client must
    ///     authenticate with username/password (RFC 1929) against this table.
    ///   - allowsUDP: whether UDP ASSOCIATE is taken (else answered "command not supported").
    public init(credentials: ProxyCredentials?, allowsUDP: Bool = false) {
        self.credentials = credentials
        self.allowsUDP = allowsUDP
    }

    public mutating func process(_ buffer: inout ByteBuffer) -> Action {
        switch state {
        case .awaitingGreeting: return processGreeting(&buffer)
        case .awaitingCredentials: return processCredentials(&buffer)
        case .awaitingRequest(let user): return processRequest(&buffer, user: user)
        case .connecting, .done: return .needMoreData
        }
    }

    /// The success reply once the upstream connection stands; `bound` is the gateway's local
    /// address of that connection (BND.ADDR/BND.PORT), or for UDP ASSOCIATE the address of
    /// the relay the client sends its datagrams to.
    public mutating func connected(boundTo bound: ProxyDestination) -> ByteBuffer {
        state = .done
        return Self.reply(.succeeded, bound: bound)
    }

    /// The failure reply when the upstream connection could not be made (or was refused by
    /// policy); close after sending it.
    public mutating func connectFailed(_ code: SOCKSReplyCode) -> ByteBuffer {
        state = .done
        return Self.reply(code, bound: nil)
    }

    /// VER REP RSV ATYP BND.ADDR BND.PORT; an unknown bound address is sent as 0.0.0.0:0.
    public static func reply(_ code: SOCKSReplyCode, bound: ProxyDestination?) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(5))
        buffer.writeInteger(code.rawValue)
        buffer.writeInteger(UInt8(0))
        (bound ?? ProxyDestination(host: .address(.v4(0)), port: 0)).write(to: &buffer)
        return buffer
    }

    // VER NMETHODS METHODS…
    private mutating func processGreeting(_ buffer: inout ByteBuffer) -> Action {
        var copy = buffer
        guard let version = copy.readInteger(as: UInt8.self) else { return .needMoreData }
        guard version == 5 else { return fail(nil, .unsupportedVersion(version)) }
        guard let count = copy.readInteger(as: UInt8.self), let methods = copy.readBytes(length: Int(count)) else { return .needMoreData }
        buffer = copy
        let offered = Set(methods.map(SOCKSAuthenticationMethod.init(rawValue:)))
        let wanted: SOCKSAuthenticationMethod = credentials == nil ? .noAuthentication : .usernamePassword
        guard offered.contains(wanted) else {
            return fail(Self.methodSelection(.noAcceptableMethods), .noAcceptableMethod(offered: methods))
        }
        state = credentials == nil ? .awaitingRequest(user: nil) : .awaitingCredentials
        return .send(Self.methodSelection(wanted))
    }

    // VER(1) ULEN UNAME PLEN PASSWD (RFC 1929 §2)
    private mutating func processCredentials(_ buffer: inout ByteBuffer) -> Action {
        var copy = buffer
        guard let version = copy.readInteger(as: UInt8.self) else { return .needMoreData }
        guard version == 1 else { return fail(Self.authenticationStatus(ok: false), .unsupportedAuthenticationVersion(version)) }
        guard let userLength = copy.readInteger(as: UInt8.self), let user = copy.readBytes(length: Int(userLength)),
              let passwordLength = copy.readInteger(as: UInt8.self), let password = copy.readBytes(length: Int(passwordLength))
        else { return .needMoreData }
        buffer = copy
        guard let credentials, let name = String(validating: user, as: UTF8.self),
              credentials.verify(user: name, password: password) else {
            return fail(Self.authenticationStatus(ok: false), .authenticationFailed(user: String(decoding: user, as: UTF8.self)))
        }
        state = .awaitingRequest(user: name)
        return .send(Self.authenticationStatus(ok: true))
    }

    // VER CMD RSV ATYP DST.ADDR DST.PORT
    private mutating func processRequest(_ buffer: inout ByteBuffer, user: String?) -> Action {
        var copy = buffer
        guard let version = copy.readInteger(as: UInt8.self) else { return .needMoreData }
        guard version == 5 else { return fail(Self.reply(.generalFailure, bound: nil), .unsupportedVersion(version)) }
        guard let command = copy.readInteger(as: UInt8.self).map(SOCKSCommand.init(rawValue:)),
              let reserved = copy.readInteger(as: UInt8.self) else { return .needMoreData }
        guard reserved == 0 else { return fail(Self.reply(.generalFailure, bound: nil), .nonZeroReservedByte(reserved)) }
        let destination: ProxyDestination
        do {
            guard let parsed = try ProxyDestination.read(from: &copy) else { return .needMoreData }
            destination = parsed
        } catch .unknownAddressType(let type) {
            return fail(Self.reply(.addressTypeNotSupported, bound: nil), .unknownAddressType(type))
        } catch {
            return fail(Self.reply(.generalFailure, bound: nil), .malformedDomainName)
        }
        buffer = copy
        switch command {
        case .connect:
            state = .connecting
            return .connect(destination, user: user)
        case .udpAssociate where allowsUDP:
            state = .connecting
            return .associate(destination, user: user)
        default:
            return fail(Self.reply(.commandNotSupported, bound: nil), .unsupportedCommand(command))
        }
    }

    private mutating func fail(_ reply: ByteBuffer?, _ failure: SOCKS5HandshakeFailure) -> Action {
        state = .done
        return .reject(reply, failure)
    }

    private static func methodSelection(_ method: SOCKSAuthenticationMethod) -> ByteBuffer {
        ByteBuffer(bytes: [5, method.rawValue])
    }

    private static func authenticationStatus(ok: Bool) -> ByteBuffer {
        ByteBuffer(bytes: [1, ok ? 0 : 1])
    }
}

/// Why a SOCKS5 handshake was refused: what the log line says.
public enum SOCKS5HandshakeFailure: Error, Hashable, Sendable, CustomStringConvertible {
    case unsupportedVersion(UInt8)
    case noAcceptableMethod(offered: [UInt8])
    case unsupportedAuthenticationVersion(UInt8)
    case authenticationFailed(user: String)
    case nonZeroReservedByte(UInt8)
    case unknownAddressType(UInt8)
    case malformedDomainName
    case unsupportedCommand(SOCKSCommand)

    public var description: String {
        switch self {
        case .unsupportedVersion(let v): "not SOCKS5 (version byte \(v))"
        case .noAcceptableMethod(let offered): "no acceptable authentication method (offered \(offered))"
        case .unsupportedAuthenticationVersion(let v): "unknown username/password sub-negotiation version \(v)"
        case .authenticationFailed(let user): "authentication failed for user '\(user)'"
        case .nonZeroReservedByte(let b): "reserved byte is \(b), not 0"
        case .unknownAddressType(let t): "unknown address type \(t)"
        case .malformedDomainName: "malformed domain name"
        case .unsupportedCommand(let c): "unsupported command \(c)"
        }
    }
}
