import NIOCore
import RSerPoolWire
import Testing

/// Component Status Protocol reports, byte for byte as rsplib's `cspmonitor` reads them.
@Suite struct ComponentStatusReportTests {
    static let registrar = ComponentStatusReport.ComponentID(.registrar, 0x0A0B_0C0D)
    static let peer = ComponentStatusReport.ComponentID(.registrar, 0x0102_0304)

    static func report(final: Bool = false) -> ComponentStatusReport {
        ComponentStatusReport(sender: registrar, timestampMicroseconds: 5_000_000, reportIntervalMicroseconds: 1_000_000,
                              location: "registrar: 127.0.0.1:3863", status: "2 PEs in 1 Pool(s), 1 Peer(s)", workload: 0.5,
                              associations: [.init(receiver: peer, payloadProtocol: ComponentStatusReport.Association.enrp)], isFinal: final)
    }

    @Test func theFieldsSitWhereTheMonitorReadsThem() {
        var buffer = ByteBuffer()
        Self.report().write(into: &buffer)
        let bytes = Array(buffer: buffer)
        #expect(bytes.count == 288 + 24)
        #expect(bytes[0] == 1 && bytes[1] == 0, "type report, not final")
        #expect(Array(bytes[2..<4]) == [0x01, 0x38], "length 312")
        #expect(Array(bytes[4..<8]) == [0, 0, 2, 0], "version 0x0200")
        #expect(Array(bytes[8..<16]) == [1, 0, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D], "group 1 in the top byte, the registrar id below")
        #expect(Array(bytes[16..<24]) == [0, 0, 0, 0, 0, 0x4C, 0x4B, 0x40], "5,000,000 µs")
        #expect(Array(bytes[24..<28]) == [0, 0x0F, 0x42, 0x40], "the interval in microseconds")
        #expect(String(decoding: bytes[28..<53], as: UTF8.self) == "registrar: 127.0.0.1:3863" && bytes[53] == 0)
        #expect(String(decoding: bytes[156..<185], as: UTF8.self) == "2 PEs in 1 Pool(s), 1 Peer(s)")
        #expect(Array(bytes[284..<286]) == [0x7F, 0xFF], "workload 0.5 × 0xFFFE")
        #expect(Array(bytes[286..<288]) == [0, 1])
        #expect(Array(bytes[288..<296]) == [1, 0, 0, 0, 1, 2, 3, 4])
        #expect(Array(bytes[296..<304]) == Array(repeating: 0xFF, count: 8), "duration unknown")
        #expect(Array(bytes[304..<312]) == [0, 0, 0, 6, 0, 0, 0, 12], "flags 0, TCP, ENRP")
    }

    @Test func reportsRoundTripAndTheFinalFlagIsBitZero() throws {
        var buffer = ByteBuffer()
        Self.report(final: true).write(into: &buffer)
        #expect(buffer.getInteger(at: 1, as: UInt8.self) == 1)
        let decoded = try ComponentStatusReport(decoding: buffer)
        #expect(decoded.isFinal && decoded.sender == Self.registrar && decoded.associations.first?.receiver == Self.peer)
        #expect(decoded.location == "registrar: 127.0.0.1:3863" && decoded.associations.first?.durationMicroseconds == nil)
        #expect(abs((decoded.workload ?? 0) - 0.5) < 0.0001)
        var none = Self.report()
        none.workload = nil
        none.location = String(repeating: "x", count: 300)
        var long = ByteBuffer()
        none.write(into: &long)
        #expect(long.readableBytes == 312 && long.getInteger(at: 284, as: UInt16.self) == 0xFFFF)
        #expect(try ComponentStatusReport(decoding: long).location.count == 127, "cut to 127 bytes and a zero")
    }

    @Test func datagramsTheMonitorWouldDropAreRefused() {
        var buffer = ByteBuffer()
        Self.report().write(into: &buffer)
        var cut = buffer
        cut.moveWriterIndex(to: 300)
        #expect(throws: ComponentStatusError.self) { try ComponentStatusReport(decoding: cut) }
        var wrongVersion = buffer
        wrongVersion.setInteger(UInt32(0x0100), at: 4)
        #expect(throws: ComponentStatusError.self) { try ComponentStatusReport(decoding: wrongVersion) }
        var wrongCount = buffer
        wrongCount.setInteger(UInt16(2), at: 286)
        #expect(throws: ComponentStatusError.self) { try ComponentStatusReport(decoding: wrongCount) }
        #expect(throws: ComponentStatusError.self) { try ComponentStatusReport(decoding: ByteBuffer(bytes: [1, 0, 0, 4])) }
    }
}
