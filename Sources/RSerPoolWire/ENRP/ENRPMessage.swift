import NIOCore

/// One pool of a Handle Table Response: its handle and PEs.
public struct HandleTableEntry: Hashable, Sendable {
    public var poolHandle: PoolHandle
    public var elements: [PoolElementParameter]
    public init(poolHandle: PoolHandle, elements: [PoolElementParameter]) {
        self.poolHandle = poolHandle
        self.elements = elements
    }
}

/// Every ENRP message of RFC 5353. Each carries the sender's and the receiver's registrar
/// identifier (the receiver is 0 when unknown, e.g. in multicast Presence).
public struct ENRPMessage: Hashable, Sendable {
    public var sender: RegistrarIdentifier
    public var receiver: RegistrarIdentifier
    public var body: Body

    public init(sender: RegistrarIdentifier, receiver: RegistrarIdentifier, _ body: Body) {
        self.sender = sender
        self.receiver = receiver
        self.body = body
    }

    public enum Body: Hashable, Sendable {
        /// Heartbeat with the checksum of the sender's own PEs (§2.1); `replyRequired` is R.
        case presence(checksum: UInt16, server: ServerInformation, replyRequired: Bool)
        /// `ownChildrenOnly` is W: only PEs the receiver is home PR of (§2.2).
        case handleTableRequest(ownChildrenOnly: Bool)
        /// A page of the handlespace; `moreToSend` is M, `rejected` is R (§2.3).
        case handleTableResponse(entries: [HandleTableEntry], moreToSend: Bool, rejected: Bool)
        /// One PE added or removed (§2.4); `takeoverSuggested` is T.
        case handleUpdate(action: HandleUpdateAction, poolHandle: PoolHandle, element: PoolElementParameter, takeoverSuggested: Bool)
        case listRequest
        /// The peers the sender knows (§2.6).
        case listResponse(servers: [ServerInformation], rejected: Bool)
        case initTakeover(target: RegistrarIdentifier)
        case initTakeoverAck(target: RegistrarIdentifier)
        case takeoverServer(target: RegistrarIdentifier)
        case error(OperationError)
    }

    public var type: ENRPMessageType {
        switch body {
        case .presence: .presence
        case .handleTableRequest: .handleTableRequest
        case .handleTableResponse: .handleTableResponse
        case .handleUpdate: .handleUpdate
        case .listRequest: .listRequest
        case .listResponse: .listResponse
        case .initTakeover: .initTakeover
        case .initTakeoverAck: .initTakeoverAck
        case .takeoverServer: .takeoverServer
        case .error: .error
        }
    }

    static let replyRequiredFlag: UInt8 = 0x01
    static let ownChildrenOnlyFlag: UInt8 = 0x01
    static let rejectFlag: UInt8 = 0x01
    static let moreToSendFlag: UInt8 = 0x02
    static let takeoverSuggestedFlag: UInt8 = 0x01

    var flags: UInt8 {
        switch body {
        case .presence(_, _, let reply): reply ? Self.replyRequiredFlag : 0
        case .handleTableRequest(let own): own ? Self.ownChildrenOnlyFlag : 0
        case .handleTableResponse(_, let more, let rejected): (more ? Self.moreToSendFlag : 0) | (rejected ? Self.rejectFlag : 0)
        case .handleUpdate(_, _, _, let takeover): takeover ? Self.takeoverSuggestedFlag : 0
        case .listResponse(_, let rejected): rejected ? Self.rejectFlag : 0
        default: 0
        }
    }

    /// Pool elements per Handle Table Response page (reference: 128).
    public static let handleTableEntriesPerPage = 128
}

extension ByteBuffer {
    /// Writes one ENRP message: header, sender, receiver, body, padding (RFC 5353 §2).
    public mutating func writeENRPMessage(_ message: ENRPMessage) {
        let start = RSerPoolFraming.begin(type: message.type.rawValue, flags: message.flags, into: &self)
        writeInteger(message.sender.rawValue)
        writeInteger(message.receiver.rawValue)
        switch message.body {
        case .presence(let checksum, let server, _):
            writePoolElementChecksumParameter(checksum)
            writeServerInformationParameter(server)
        case .handleTableRequest, .listRequest:
            break
        case .handleTableResponse(let entries, _, _):
            for entry in entries {
                writePoolHandleParameter(entry.poolHandle)
                for element in entry.elements { writePoolElementParameter(element) }
            }
        case .handleUpdate(let action, let handle, let element, _):
            writeInteger(action.rawValue)
            writeInteger(UInt16(0))
            writePoolHandleParameter(handle)
            writePoolElementParameter(element)
        case .listResponse(let servers, _):
            for server in servers { writeServerInformationParameter(server) }
        case .initTakeover(let target), .initTakeoverAck(let target), .takeoverServer(let target):
            writeInteger(target.rawValue)
        case .error(let error):
            writeOperationErrorParameter(error)
        }
        RSerPoolFraming.finish(start: start, into: &self)
    }
}

extension ENRPMessage {
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        buffer.writeENRPMessage(self)
        return buffer
    }

    /// Decodes one frame (see `RSerPoolFraming.nextFrame`), with the same rules as ASAP:
    /// exact lengths, limits, action bits for unknown parameters.
    public static func decode(frame: ByteBuffer, limits: WireLimits = .default) throws(RSerPoolWireError) -> ENRPMessage {
        let (typeByte, flags, bodyBuffer) = try RSerPoolFraming.split(frame)
        var body = bodyBuffer
        let type = ENRPMessageType(typeByte)
        do throws(RSerPoolWireError) {
            guard (1...10).contains(typeByte) else {
                throw RSerPoolWireError(.unrecognizedMessage, "unknown ENRP message type", messageType: typeByte, cause: .unrecognizedMessage,
                                        causeInformation: Array(frame.getBytes(at: frame.readerIndex, length: min(frame.readableBytes, 1024)) ?? []),
                                        bytes: frame)
            }
            let sender = RegistrarIdentifier(try body.readFixed(UInt32.self, in: "\(type)"))
            let receiver = RegistrarIdentifier(try body.readFixed(UInt32.self, in: "\(type)"))
            let decoded: Body
            switch type {
            case .initTakeover, .initTakeoverAck, .takeoverServer:
                let target = RegistrarIdentifier(try body.readFixed(UInt32.self, in: "\(type)"))
                try body.requireConsumed("\(type)")
                decoded = type == .initTakeover ? .initTakeover(target: target)
                    : type == .initTakeoverAck ? .initTakeoverAck(target: target) : .takeoverServer(target: target)
            case .handleTableRequest, .listRequest:
                var reader = ParameterReader(body)
                if let extra = try reader.next() {
                    throw RSerPoolWireError(.invalidValue, "\(type) carries \(extra.type)", parameterType: extra.type.rawValue, bytes: extra.whole)
                }
                decoded = type == .listRequest ? .listRequest : .handleTableRequest(ownChildrenOnly: flags & Self.ownChildrenOnlyFlag != 0)
            case .presence:
                var reader = ParameterReader(body)
                let checksumRaw = try reader.expect(.poolElementChecksum, in: "Presence")
                var checksumValue = checksumRaw.value
                guard checksumValue.readableBytes == 2 || checksumValue.readableBytes == 4, let checksum = checksumValue.readInteger(as: UInt16.self) else {
                    throw RSerPoolWireError(.invalidValue, "PE Checksum has a \(checksumRaw.value.readableBytes)-byte value", bytes: checksumRaw.whole)
                }
                let server = try ServerInformation.decode(reader.expect(.serverInformation, in: "Presence"), limits: limits)
                try reader.requireEnd(in: "Presence")
                decoded = .presence(checksum: checksum, server: server, replyRequired: flags & Self.replyRequiredFlag != 0)
            case .handleTableResponse:
                var reader = ParameterReader(body)
                var entries: [HandleTableEntry] = []
                var count = 0
                while let raw = try reader.next() {
                    switch raw.type {
                    case .poolHandle:
                        entries.append(HandleTableEntry(poolHandle: try PoolHandle.decode(raw, limits: limits), elements: []))
                    case .poolElement where !entries.isEmpty:
                        entries[entries.count - 1].elements.append(try PoolElementParameter.decode(raw, limits: limits))
                        count += 1
                        guard count <= limits.maximumPoolElementsPerMessage else {
                            throw RSerPoolWireError(.tooManyItems, "Handle Table Response carries more than \(limits.maximumPoolElementsPerMessage) PEs", bytes: raw.whole)
                        }
                    default:
                        throw RSerPoolWireError(.invalidValue, "Handle Table Response carries \(raw.type) out of place", parameterType: raw.type.rawValue, bytes: raw.whole)
                    }
                }
                decoded = .handleTableResponse(entries: entries, moreToSend: flags & Self.moreToSendFlag != 0, rejected: flags & Self.rejectFlag != 0)
            case .handleUpdate:
                let action = HandleUpdateAction(rawValue: try body.readFixed(UInt16.self, in: "Handle Update"))
                _ = try body.readFixed(UInt16.self, in: "Handle Update")
                guard action == .addPoolElement || action == .deletePoolElement else {
                    throw RSerPoolWireError(.invalidValue, "Handle Update action \(action.rawValue)", messageType: typeByte, bytes: frame)
                }
                var reader = ParameterReader(body)
                let handle = try PoolHandle.decode(reader.expect(.poolHandle, in: "Handle Update"), limits: limits)
                let element = try PoolElementParameter.decode(reader.expect(.poolElement, in: "Handle Update"), limits: limits)
                try reader.requireEnd(in: "Handle Update")
                decoded = .handleUpdate(action: action, poolHandle: handle, element: element, takeoverSuggested: flags & Self.takeoverSuggestedFlag != 0)
            case .listResponse:
                var reader = ParameterReader(body)
                var servers: [ServerInformation] = []
                while let raw = try reader.next() {
                    guard raw.type == .serverInformation else {
                        throw RSerPoolWireError(.invalidValue, "List Response carries \(raw.type)", parameterType: raw.type.rawValue, bytes: raw.whole)
                    }
                    servers.append(try ServerInformation.decode(raw, limits: limits))
                    guard servers.count <= limits.maximumPoolElementsPerMessage else {
                        throw RSerPoolWireError(.tooManyItems, "List Response lists too many registrars", bytes: raw.whole)
                    }
                }
                decoded = .listResponse(servers: servers, rejected: flags & Self.rejectFlag != 0)
            default:
                var reader = ParameterReader(body)
                let error = try OperationError.decode(reader.expect(.operationError, in: "ENRP Error"))
                try reader.requireEnd(in: "ENRP Error")
                decoded = .error(error)
            }
            return ENRPMessage(sender: sender, receiver: receiver, decoded)
        } catch {
            throw error.inMessage(typeByte)
        }
    }

    /// Decodes the next ENRP message at the front of a stream buffer; nil when more bytes are needed.
    public static func decode(from buffer: inout ByteBuffer, limits: WireLimits = .default) throws(RSerPoolWireError) -> ENRPMessage? {
        guard let frame = try RSerPoolFraming.nextFrame(from: &buffer, limits: limits) else { return nil }
        return try decode(frame: frame, limits: limits)
    }
}

extension ParameterReader {
    mutating func requireEnd(in context: String) throws(RSerPoolWireError) {
        if let extra = try next() {
            throw RSerPoolWireError(.invalidValue, "\(context) carries an unexpected \(extra.type)", parameterType: extra.type.rawValue, bytes: extra.whole)
        }
    }
}
