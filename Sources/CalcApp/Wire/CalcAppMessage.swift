import NIOCore
import RSerPoolWire

/// A CalcApp message type (the reference implementation's CalcApp protocol).
public struct CalcAppMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let request = Self(1)
    public static let accept = Self(2)
    public static let reject = Self(3)
    public static let abort = Self(4)
    public static let complete = Self(5)
    public static let keepAlive = Self(6)
    public static let keepAliveAck = Self(7)

    /// Types 1–7 are CalcApp's; on a session stream they are told apart from ASAP's session
    /// messages (Cookie 0x0B … ASAP Error 0x0E) by the type byte.
    public static let range: ClosedRange<UInt8> = 1...7

    public var description: String {
        switch self {
        case .request: "REQUEST"
        case .accept: "ACCEPT"
        case .reject: "REJECT"
        case .abort: "ABORT"
        case .complete: "COMPLETE"
        case .keepAlive: "KEEPALIVE"
        case .keepAliveAck: "KEEPALIVE_ACK"
        default: "CalcApp type \(rawValue)"
        }
    }
}

/// One CalcApp message: `type u8 | flags u8 | length u16 (= 24) | jobID u32 | jobSize u64 |
/// completed u64`, big-endian. Sizes count calculations.
public struct CalcAppMessage: Hashable, Sendable, CustomStringConvertible {
    public static let size = 24

    public var type: CalcAppMessageType
    public var flags: UInt8
    public var jobID: UInt32
    public var jobSize: UInt64
    public var completed: UInt64

    public init(_ type: CalcAppMessageType, jobID: UInt32, jobSize: UInt64 = 0, completed: UInt64 = 0, flags: UInt8 = 0) {
        self.type = type
        self.flags = flags
        self.jobID = jobID
        self.jobSize = jobSize
        self.completed = completed
    }

    public var description: String { "\(type)(job \(jobID), size \(jobSize), completed \(completed))" }

    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(Self.size))
        buffer.writeInteger(jobID)
        buffer.writeInteger(jobSize)
        buffer.writeInteger(completed)
    }

    /// Decodes a 24-byte message (exactly).
    public init(decoding frame: ByteBuffer) throws(CalcAppError) {
        var buffer = frame
        guard buffer.readableBytes == Self.size, let type = buffer.readInteger(as: UInt8.self), let flags = buffer.readInteger(as: UInt8.self),
              let length = buffer.readInteger(as: UInt16.self), let jobID = buffer.readInteger(as: UInt32.self),
              let jobSize = buffer.readInteger(as: UInt64.self), let completed = buffer.readInteger(as: UInt64.self) else {
            throw CalcAppError(.malformedMessage, "a CalcApp message is 24 bytes, got \(frame.readableBytes)")
        }
        guard length == Self.size else { throw CalcAppError(.malformedMessage, "CalcApp length field \(length), not 24") }
        guard CalcAppMessageType.range.contains(type) else { throw CalcAppError(.malformedMessage, "CalcApp type \(type)") }
        self.init(CalcAppMessageType(type), jobID: jobID, jobSize: jobSize, completed: completed, flags: flags)
    }
}

/// What travels on a PU↔PE session: CalcApp messages and ASAP's session-layer messages
/// (Cookie, Cookie Echo, Business Card, ASAP Error), told apart by the type byte: 1–7 are
/// CalcApp, 0x0B–0x0E are ASAP. Both frame themselves by their length field.
public enum SessionMessage: Hashable, Sendable {
    case calcApp(CalcAppMessage)
    case asap(ASAPMessage)

    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .calcApp(let message): message.write(into: &buffer)
        case .asap(let message): buffer.writeASAPMessage(message)
        }
    }

    /// The next session message at the front of a stream buffer; nil when more bytes are needed.
    public static func decode(from buffer: inout ByteBuffer) throws(CalcAppError) -> SessionMessage? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        if CalcAppMessageType.range.contains(type) {
            guard buffer.readableBytes >= 4, let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            guard length == CalcAppMessage.size else { throw CalcAppError(.malformedMessage, "CalcApp length field \(length), not 24") }
            guard buffer.readableBytes >= CalcAppMessage.size else { return nil }
            return .calcApp(try CalcAppMessage(decoding: buffer.readSlice(length: CalcAppMessage.size)!))
        }
        guard [ASAPMessageType.cookie, .cookieEcho, .businessCard, .error].map(\.rawValue).contains(type) else {
            throw CalcAppError(.malformedMessage, "type \(type) belongs to neither CalcApp nor the ASAP session layer")
        }
        do {
            guard let decoded = try ASAPMessage.decode(from: &buffer, limits: WireLimits(maximumMessageSize: 4096)) else { return nil }
            return .asap(decoded.message)
        } catch {
            throw CalcAppError(.malformedMessage, "\(error)")
        }
    }
}

/// A CalcApp failure: what and why.
public struct CalcAppError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        let name: String
        public static let malformedMessage = Code(name: "malformed message")
        public static let forgedCookie = Code(name: "forged or damaged cookie")
        public static let unknownJob = Code(name: "unknown job")
        public static let invalidJob = Code(name: "invalid job")
    }
    public var code: Code
    public var detail: String
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }
    public var description: String { "\(code.name): \(detail)" }
}
