import ProcessSupport
import Testing

@Suite struct ReadyLineTests {
    @Test func aLineRoundTripsWithAddressListsAndQuotedValues() throws {
        let line = ReadyLine(daemon: "pe", [
            "id": "$0a0b0c0d,$01020304", "pool": "Echo Pool", "user": "127.0.0.1:4000,[::1]:4001",
            "policy": #"weighted "fast" \ 3"#, "missing": nil,
        ])
        let text = line.description
        #expect(text == #"edgepool pe ready id=$0a0b0c0d,$01020304 pool="Echo Pool" user=127.0.0.1:4000,[::1]:4001 policy="weighted \"fast\" \\ 3""#)
        let parsed = try #require(ReadyLine(parsing: text))
        #expect(parsed == line)
        #expect(parsed.list("id") == ["$0a0b0c0d", "$01020304"])
        #expect(parsed["pool"] == "Echo Pool")
        #expect(parsed["missing"] == nil)
        #expect(parsed.port("user") == 4000)
    }

    @Test func portsOfIPv6AndIPv4Addresses() throws {
        let line = try #require(ReadyLine(parsing: "edgepool registrar ready asap=[::1]:3863 enrp=10.0.0.1:9901,10.0.0.2:9901"))
        #expect(line.daemon == "registrar")
        #expect(line.port("asap") == 3863)
        #expect(line.port("enrp") == 9901)
        #expect(line.port("nothing") == nil)
    }

    @Test(arguments: [
        "2026-12-01T10:00:00 info registrar: listening",   // a log line
        "edgepool registrar listening on 127.0.0.1:3863",    // not a ready line
        "edgepool ready asap=1",                              // no daemon name
        "edgepool registrar ready asap",                     // a field without '='
        "edgepool registrar ready =1",                       // a field without a key
        "",
    ])
    func otherLinesAreNotReadyLines(_ text: String) {
        #expect(ReadyLine(parsing: text) == nil)
    }

    @Test func anEmptyValueSurvives() throws {
        let line = ReadyLine(daemon: "gateway", ["listen": ""])
        #expect(line.description == #"edgepool gateway ready listen="""#)
        #expect(ReadyLine(parsing: line.description)?["listen"] == "")
    }
}
