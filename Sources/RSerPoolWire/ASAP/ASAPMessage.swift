import NIOCore

/// Every ASAP message of RFC 5352, decoded.
public enum ASAPMessage: Hashable, Sendable {
    case registration(ASAPRegistration)
    case deregistration(ASAPDeregistration)
    case registrationResponse(ASAPRegistrationResponse)
    case deregistrationResponse(ASAPDeregistrationResponse)
    case handleResolution(ASAPHandleResolution)
    case handleResolutionResponse(ASAPHandleResolutionResponse)
    case endpointKeepAlive(ASAPEndpointKeepAlive)
    case endpointKeepAliveAck(ASAPEndpointKeepAliveAck)
    case endpointUnreachable(ASAPEndpointUnreachable)
    case serverAnnounce(ASAPServerAnnounce)
    case cookie(ASAPCookie)
    case cookieEcho(ASAPCookieEcho)
    case businessCard(ASAPBusinessCard)
    case error(ASAPErrorMessage)

    public var type: ASAPMessageType {
        switch self {
        case .registration: .registration
        case .deregistration: .deregistration
        case .registrationResponse: .registrationResponse
        case .deregistrationResponse: .deregistrationResponse
        case .handleResolution: .handleResolution
        case .handleResolutionResponse: .handleResolutionResponse
        case .endpointKeepAlive: .endpointKeepAlive
        case .endpointKeepAliveAck: .endpointKeepAliveAck
        case .endpointUnreachable: .endpointUnreachable
        case .serverAnnounce: .serverAnnounce
        case .cookie: .cookie
        case .cookieEcho: .cookieEcho
        case .businessCard: .businessCard
        case .error: .error
        }
    }
}

/// A decoded ASAP message with the unknown parameters its sender must be told about
/// (action bits `11`: skipped, but reported with an Operation Error).
public struct DecodedASAPMessage: Sendable {
    public var message: ASAPMessage
    public var unrecognizedParameters: [RawParameter]

    /// The ASAP Error that reports the unrecognized parameters, if any must be reported.
    public var unrecognizedParameterReport: ASAPErrorMessage? {
        guard !unrecognizedParameters.isEmpty else { return nil }
        return ASAPErrorMessage(OperationError(causes: unrecognizedParameters.prefix(OperationError.maximumCauses).map {
            ErrorCause(.unrecognizedParameter, information: Array(buffer: $0.whole))
        }))
    }
}

extension ByteBuffer {
    /// Writes one ASAP message: header, body, padding (RFC 5352 §2.1).
    public mutating func writeASAPMessage(_ message: ASAPMessage) {
        var flags: UInt8 = 0
        switch message {
        case .registrationResponse(let m): flags = m.flags
        case .endpointKeepAlive(let m): flags = m.flags
        default: break
        }
        let start = RSerPoolFraming.begin(type: message.type.rawValue, flags: flags, into: &self)
        switch message {
        case .registration(let m): m.write(into: &self)
        case .deregistration(let m): m.write(into: &self)
        case .registrationResponse(let m): m.write(into: &self)
        case .deregistrationResponse(let m): m.write(into: &self)
        case .handleResolution(let m): m.write(into: &self)
        case .handleResolutionResponse(let m): m.write(into: &self)
        case .endpointKeepAlive(let m): m.write(into: &self)
        case .endpointKeepAliveAck(let m): m.write(into: &self)
        case .endpointUnreachable(let m): m.write(into: &self)
        case .serverAnnounce(let m): m.write(into: &self)
        case .cookie(let m): writeCookieParameter(m.cookie)
        case .cookieEcho(let m): writeCookieParameter(m.cookie)
        case .businessCard(let m): m.write(into: &self)
        case .error(let m): writeOperationErrorParameter(m.error)
        }
        RSerPoolFraming.finish(start: start, into: &self)
    }
}

extension ASAPMessage {
    /// The message as bytes (one frame).
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        buffer.writeASAPMessage(self)
        return buffer
    }

    /// Decodes one frame (as returned by `RSerPoolFraming.nextFrame`). The frame must hold
    /// exactly one message; every parameter is checked against its declared length and the
    /// limits, unknown parameters follow their action bits, unknown message types throw
    /// `.unrecognizedMessage` with the message as cause information.
    public static func decode(frame: ByteBuffer, limits: WireLimits = .default) throws(RSerPoolWireError) -> DecodedASAPMessage {
        let (typeByte, flags, bodyBuffer) = try RSerPoolFraming.split(frame)
        var body = bodyBuffer
        let type = ASAPMessageType(typeByte)
        var reader = ParameterReader(body)
        let message: ASAPMessage
        do throws(RSerPoolWireError) {
            switch type {
            case .registration: message = .registration(try .init(reader: &reader, limits: limits))
            case .deregistration: message = .deregistration(try .init(reader: &reader, limits: limits))
            case .registrationResponse: message = .registrationResponse(try .init(flags: flags, reader: &reader, limits: limits))
            case .deregistrationResponse: message = .deregistrationResponse(try .init(reader: &reader, limits: limits))
            case .handleResolution: message = .handleResolution(try .init(reader: &reader, limits: limits))
            case .handleResolutionResponse: message = .handleResolutionResponse(try .init(reader: &reader, limits: limits))
            case .endpointKeepAlive:
                var keepAlive = ASAPEndpointKeepAlive(registrar: .unknown, poolHandle: PoolHandle([]), identifier: nil)
                reader = try keepAlive.decodeBody(flags: flags, body: &body, limits: limits)
                message = .endpointKeepAlive(keepAlive)
            case .endpointKeepAliveAck: message = .endpointKeepAliveAck(try .init(reader: &reader, limits: limits))
            case .endpointUnreachable: message = .endpointUnreachable(try .init(reader: &reader, limits: limits))
            case .serverAnnounce:
                var announce = ASAPServerAnnounce(registrar: .unknown, transports: [])
                reader = try announce.decodeBody(body: &body, limits: limits)
                message = .serverAnnounce(announce)
            case .cookie: message = .cookie(ASAPCookie(try readCookie(&reader, context: "Cookie")))
            case .cookieEcho: message = .cookieEcho(ASAPCookieEcho(try readCookie(&reader, context: "Cookie Echo")))
            case .businessCard: message = .businessCard(try .init(reader: &reader, limits: limits))
            case .error: message = .error(ASAPErrorMessage(try readOperationError(&reader, context: "ASAP Error")))
            default:
                throw RSerPoolWireError(.unrecognizedMessage, "unknown ASAP message type", messageType: typeByte,
                                        cause: .unrecognizedMessage,
                                        causeInformation: Array(frame.getBytes(at: frame.readerIndex, length: min(frame.readableBytes, 1024)) ?? []),
                                        bytes: frame)
            }
            if let extra = try reader.next() {
                throw RSerPoolWireError(.invalidValue, "\(type) carries an unexpected \(extra.type)",
                                        parameterType: extra.type.rawValue, bytes: extra.whole)
            }
        } catch {
            throw error.inMessage(typeByte)
        }
        return DecodedASAPMessage(message: message, unrecognizedParameters: reader.unrecognizedToReport)
    }

    /// Decodes the next message at the front of a stream buffer: nil when more bytes are
    /// needed. A framing error leaves the buffer as it was (the stream is unusable); a body
    /// error consumes the bad frame, so the caller may report it and go on.
    public static func decode(from buffer: inout ByteBuffer, limits: WireLimits = .default) throws(RSerPoolWireError) -> DecodedASAPMessage? {
        guard let frame = try RSerPoolFraming.nextFrame(from: &buffer, limits: limits) else { return nil }
        return try decode(frame: frame, limits: limits)
    }
}

extension ASAPEndpointKeepAlive {
    mutating func decodeBody(flags: UInt8, body: inout ByteBuffer, limits: WireLimits) throws(RSerPoolWireError) -> ParameterReader {
        var decoded = ASAPEndpointKeepAlive(registrar: .unknown, poolHandle: PoolHandle([]), identifier: nil)
        let reader = try decoded.initialise(flags: flags, body: &body, limits: limits)
        self = decoded
        return reader
    }
    private mutating func initialise(flags: UInt8, body: inout ByteBuffer, limits: WireLimits) throws(RSerPoolWireError) -> ParameterReader {
        registrar = RegistrarIdentifier(try body.readFixed(UInt32.self, in: "Endpoint Keep-Alive"))
        var reader = ParameterReader(body)
        poolHandle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Endpoint Keep-Alive"), limits: limits)
        isHome = flags & Self.homeFlag != 0
        if let raw = try reader.next() {
            guard raw.type == .poolElementIdentifier else {
                throw RSerPoolWireError(.invalidValue, "Endpoint Keep-Alive carries \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            identifier = try PoolElementIdentifier.decode(raw)
        }
        return reader
    }
}

extension ASAPServerAnnounce {
    mutating func decodeBody(body: inout ByteBuffer, limits: WireLimits) throws(RSerPoolWireError) -> ParameterReader {
        registrar = RegistrarIdentifier(try body.readFixed(UInt32.self, in: "Server Announce"))
        var reader = ParameterReader(body)
        transports = []
        while let raw = try reader.next() {
            guard TransportAddress.transportKinds.contains(raw.type) else {
                throw RSerPoolWireError(.invalidValue, "Server Announce carries \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            transports.append(try TransportAddress.decode(raw, limits: limits))
            guard transports.count <= limits.maximumAddressesPerTransport else {
                throw RSerPoolWireError(.tooManyItems, "Server Announce lists too many transports", bytes: raw.whole)
            }
        }
        return reader
    }
}
