import NIOCore

/// A Component Status Protocol report (rsplib's monitoring protocol; `cspmonitor` listens on
/// UDP 2960): one datagram per report, big-endian, no padding. Registrars, PEs and PUs send
/// one every report interval and a final one (flag set) when they shut down.
///
///     type 1 | flags | length = 288 + 24·N | version 0x0200 | sender id (8) | timestamp µs (8)
///     | interval µs (4) | location (128, ASCII, zero-padded) | status (128) | workload (2)
///     | N (2) | N × (receiver id 8, duration µs 8, flags 2, protocol 2, PPID 4)
public struct ComponentStatusReport: Hashable, Sendable {
    /// The kind of component (the id's top byte). Open: a code point added later is data.
    public struct Group: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let registrar = Self(rawValue: 1)
        public static let poolElement = Self(rawValue: 2)
        public static let poolUser = Self(rawValue: 3)
    }

    /// A component: group in the top byte, the object (registrar or PE identifier, a random
    /// number for a PU) in the other 56 bits.
    public struct ComponentID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        public init(_ group: Group, _ object: UInt64) { rawValue = UInt64(group.rawValue) << 56 | (object & 0x00FF_FFFF_FFFF_FFFF) }
        public var group: Group { Group(rawValue: UInt8(rawValue >> 56)) }
        public var object: UInt64 { rawValue & 0x00FF_FFFF_FFFF_FFFF }
        public var description: String { "\(group.rawValue):\(String(object, radix: 16))" }
    }

    /// One association of the component (to a registrar, a peer, a PE).
    public struct Association: Hashable, Sendable {
        public var receiver: ComponentID
        /// How long it has been up; nil: unknown (all ones on the wire).
        public var durationMicroseconds: UInt64?
        /// IP protocol number: 6 TCP, 17 UDP, 132 SCTP.
        public var protocolNumber: UInt16
        /// SCTP payload protocol identifier of what it carries: 11 ASAP, 12 ENRP, 0 data.
        public var payloadProtocol: UInt32

        public init(receiver: ComponentID, durationMicroseconds: UInt64? = nil, protocolNumber: UInt16 = 6, payloadProtocol: UInt32) {
            self.receiver = receiver
            self.durationMicroseconds = durationMicroseconds
            self.protocolNumber = protocolNumber
            self.payloadProtocol = payloadProtocol
        }

        public static let asap: UInt32 = 11
        public static let enrp: UInt32 = 12
    }

    public static let type: UInt8 = 0x01
    public static let version: UInt32 = 0x0000_0200
    public static let headerSize = 288
    public static let associationSize = 24
    public static let textSize = 128
    /// Associations one report carries (more are left out): a report stays one small datagram.
    public static let maximumAssociations = 256
    /// The registered port of `cspmonitor`.
    public static let port = 2960

    public var isFinal: Bool
    public var sender: ComponentID
    /// Microseconds since the reporter started (shown as its uptime).
    public var timestampMicroseconds: UInt64
    /// Microseconds between reports (the monitor forgets a component after ~10 of them).
    public var reportIntervalMicroseconds: UInt32
    public var location: String
    public var status: String
    /// 0…1, nil for none.
    public var workload: Double?
    public var associations: [Association]

    public init(sender: ComponentID, timestampMicroseconds: UInt64, reportIntervalMicroseconds: UInt32, location: String, status: String,
                workload: Double? = nil, associations: [Association] = [], isFinal: Bool = false) {
        self.sender = sender
        self.timestampMicroseconds = timestampMicroseconds
        self.reportIntervalMicroseconds = reportIntervalMicroseconds
        self.location = location
        self.status = status
        self.workload = workload
        self.associations = associations
        self.isFinal = isFinal
    }

    /// The datagram. Texts longer than 127 bytes are cut (one zero byte always ends them);
    /// associations past `maximumAssociations` are left out.
    public func write(into buffer: inout ByteBuffer) {
        let entries = associations.prefix(Self.maximumAssociations)
        buffer.writeInteger(Self.type)
        buffer.writeInteger(UInt8(isFinal ? 1 : 0))
        buffer.writeInteger(UInt16(Self.headerSize + Self.associationSize * entries.count))
        buffer.writeInteger(Self.version)
        buffer.writeInteger(sender.rawValue)
        buffer.writeInteger(timestampMicroseconds)
        buffer.writeInteger(reportIntervalMicroseconds)
        for text in [location, status] {
            let bytes = Array(text.utf8.prefix(Self.textSize - 1))
            buffer.writeBytes(bytes)
            buffer.writeRepeatingByte(0, count: Self.textSize - bytes.count)
        }
        buffer.writeInteger(workload.map { UInt16(min(max($0, 0), 1) * 0xFFFE + 0.5) } ?? 0xFFFF)
        buffer.writeInteger(UInt16(entries.count))
        for entry in entries {
            buffer.writeInteger(entry.receiver.rawValue)
            buffer.writeInteger(entry.durationMicroseconds ?? UInt64.max)
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(entry.protocolNumber)
            buffer.writeInteger(entry.payloadProtocol)
        }
    }

    /// Decodes one datagram, as strictly as `cspmonitor` does: the length must be exactly
    /// 288 + 24·N and match the datagram, the type 1, the version 0x0200.
    public init(decoding datagram: ByteBuffer) throws(ComponentStatusError) {
        var buffer = datagram
        guard buffer.readableBytes >= Self.headerSize,
              let type = buffer.readInteger(as: UInt8.self), let flags = buffer.readInteger(as: UInt8.self),
              let length = buffer.readInteger(as: UInt16.self), let version = buffer.readInteger(as: UInt32.self),
              let sender = buffer.readInteger(as: UInt64.self), let timestamp = buffer.readInteger(as: UInt64.self),
              let interval = buffer.readInteger(as: UInt32.self) else { throw ComponentStatusError("shorter than the 288-byte header") }
        guard type == Self.type else { throw ComponentStatusError("type \(type), not 1 (report)") }
        guard version == Self.version else { throw ComponentStatusError("version 0x\(String(version, radix: 16)), not 0x200") }
        guard Int(length) == datagram.readableBytes else { throw ComponentStatusError("length \(length) but \(datagram.readableBytes) bytes") }
        func text() -> String {
            let bytes = buffer.readBytes(length: Self.textSize) ?? []
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        let location = text(), status = text()
        guard let workload = buffer.readInteger(as: UInt16.self), let count = buffer.readInteger(as: UInt16.self) else {
            throw ComponentStatusError("shorter than the 288-byte header")
        }
        guard Int(length) == Self.headerSize + Self.associationSize * Int(count) else {
            throw ComponentStatusError("\(count) associations do not fill \(length) bytes")
        }
        var associations: [Association] = []
        for _ in 0..<count {
            guard let receiver = buffer.readInteger(as: UInt64.self), let duration = buffer.readInteger(as: UInt64.self),
                  let _ = buffer.readInteger(as: UInt16.self), let proto = buffer.readInteger(as: UInt16.self),
                  let ppid = buffer.readInteger(as: UInt32.self) else { throw ComponentStatusError("an association is cut short") }
            associations.append(Association(receiver: ComponentID(rawValue: receiver), durationMicroseconds: duration == .max ? nil : duration,
                                            protocolNumber: proto, payloadProtocol: ppid))
        }
        self.init(sender: ComponentID(rawValue: sender), timestampMicroseconds: timestamp, reportIntervalMicroseconds: interval,
                  location: location, status: status, workload: workload == 0xFFFF ? nil : Double(workload) / 0xFFFE,
                  associations: associations, isFinal: flags & 1 != 0)
    }
}

public struct ComponentStatusError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
