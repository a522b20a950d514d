import Foundation
import Gateway
import NIOHTTP1
import Testing

@Suite struct HTTPProxyRequestTests {
    let interpreter = HTTPProxyRequestInterpreter(credentials: nil)

    func head(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func absoluteFormIsRewrittenToOriginFormWithoutHopByHopFields() {
        let decision = interpreter.interpret(head(.GET, "http://Example.org:8080/a/b?x=1#frag", [
            ("Host", "wrong"), ("Proxy-Connection", "keep-alive"), ("Connection", "X-Secret, keep-alive"),
            ("X-Secret", "1"), ("Accept", "*/*"),
        ]))
        guard case .forward(let destination, let forwarded, nil) = decision else {
            Issue.record("not forwarded: \(decision)")
            return
        }
        #expect(destination == ProxyDestination(host: .name("example.org"), port: 8080))
        #expect(forwarded.uri == "/a/b?x=1")
        #expect(forwarded.headers["Host"] == ["Example.org:8080"])
        #expect(forwarded.headers["Accept"] == ["*/*"])
        #expect(forwarded.headers["X-Secret"].isEmpty)
        #expect(forwarded.headers["Proxy-Connection"].isEmpty)
        #expect(forwarded.headers["Via"] == ["1.1 edgepool"])
    }

    @Test func emptyPathBecomesSlash() {
        guard case .forward(let destination, let forwarded, _) = interpreter.interpret(head(.GET, "http://[2001:db8::1]")) else {
            Issue.record("not forwarded")
            return
        }
        #expect(destination.port == 80)
        #expect(destination.hostDescription == "2001:db8::1")
        #expect(forwarded.uri == "/")
    }

    @Test func connectNeedsHostAndPort() {
        #expect(interpreter.interpret(head(.CONNECT, "example.org:443")) == .tunnel(ProxyDestination(host: .name("example.org"), port: 443), user: nil))
        #expect(interpreter.interpret(head(.CONNECT, "[::1]:22")) == .tunnel(ProxyDestination(host: .address(.ipv6Loopback), port: 22), user: nil))
        for bad in ["example.org", "example.org:0", "example.org:99999", "::1:22", ":443", "exa mple.org:443"] {
            guard case .refuse(let refusal) = interpreter.interpret(head(.CONNECT, bad)) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(refusal.status == .badRequest)
        }
    }

    @Test func originFormAndHTTPSAreRefused() {
        guard case .refuse(let a) = interpreter.interpret(head(.GET, "/index.html")),
              case .refuse(let b) = interpreter.interpret(head(.GET, "https://example.org/")) else {
            Issue.record("accepted")
            return
        }
        #expect(a.status == .badRequest && a.reason.contains("absolute URI"))
        #expect(b.status == .badRequest && b.reason.contains("CONNECT"))
    }

    @Test(arguments: [
        [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        [("Content-Length", "5"), ("Content-Length", "6")],
        [("Content-Length", "5, 6")],
        [("Content-Length", "-1")],
        [("Content-Length", "0x10")],
        [("Transfer-Encoding", "chunked, gzip")],
        [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
    ])
    func smugglingShapesAreRefused(headers: [(String, String)]) {
        guard case .refuse(let refusal) = interpreter.interpret(head(.POST, "http://example.org/", headers)) else {
            Issue.record("accepted \(headers)")
            return
        }
        #expect(refusal.status == .badRequest)
    }

    @Test(arguments: [
        [("Transfer-Encoding", "gzip, chunked")],          // a coding the proxy does not undo
        [("Transfer-Encoding", "identity")],
        [("Transfer-Encoding", "chunked, chunked")],
        [("Transfer-Encoding", "xchunked")],
        [("Transfer-Encoding", ", chunked")],
    ])
    func transferCodingsOtherThanOneChunkedAreRefused(headers: [(String, String)]) {
        guard case .refuse(let refusal) = interpreter.interpret(head(.POST, "http://example.org/", headers)) else {
            Issue.record("accepted \(headers)")
            return
        }
        #expect(refusal.status == .notImplemented || refusal.status == .badRequest, "\(refusal)")
    }

    @Test(arguments: ["Transfer_Encoding", "Content_Length", "transfer_encoding", "Content Length"])
    func framingFieldsInDisguiseAreRefused(name: String) {
        guard case .refuse(let refusal) = interpreter.interpret(head(.POST, "http://example.org/", [(name, "chunked")])) else {
            Issue.record("accepted \(name)")
            return
        }
        #expect(refusal.status == .badRequest && refusal.reason.contains("smuggling"))
    }

    @Test func transferEncodingInHTTP10IsRefused() {
        let old = HTTPRequestHead(version: .http1_0, method: .POST, uri: "http://example.org/", headers: HTTPHeaders([("Transfer-Encoding", "chunked")]))
        guard case .refuse(let refusal) = interpreter.interpret(old) else {
            Issue.record("accepted")
            return
        }
        #expect(refusal.status == .badRequest && refusal.reason.contains("HTTP/1.0"))
    }

    @Test func framingIsRebuiltNotCopied() {
        // Any spelling of chunked goes out as exactly one "Transfer-Encoding: chunked".
        for value in ["chunked", "Chunked", " CHUNKED "] {
            guard case .forward(_, let forwarded, _) = interpreter.interpret(head(.POST, "http://example.org/", [("transfer-encoding", value)])) else {
                Issue.record("refused \(value)")
                continue
            }
            #expect(forwarded.headers["Transfer-Encoding"] == ["chunked"] && forwarded.headers["Content-Length"].isEmpty, "\(forwarded.headers)")
        }
        guard case .forward(_, let forwarded, _) = interpreter.interpret(head(.POST, "http://example.org/", [("Content-Length", "5, 5"), ("content-length", "5")])) else {
            Issue.record("refused")
            return
        }
        #expect(forwarded.headers["Content-Length"] == ["5"])
    }

    @Test func headerLimitsAnswer431() {
        let many = (0...ProxyLimits.maximumHTTPHeaderCount).map { ("X-H\($0)", "v") }
        guard case .refuse(let tooMany) = interpreter.interpret(head(.GET, "http://example.org/", many)) else {
            Issue.record("accepted \(many.count) fields")
            return
        }
        #expect(tooMany.status == .requestHeaderFieldsTooLarge)
        guard case .refuse(let tooLong) = interpreter.interpret(head(.GET, "http://example.org/", [("X-Big", String(repeating: "a", count: ProxyLimits.maximumHTTPHeadLength))])) else {
            Issue.record("accepted a 16 KiB field")
            return
        }
        #expect(tooLong.status == .requestHeaderFieldsTooLarge)
        let fine = (0..<ProxyLimits.maximumHTTPHeaderCount - 1).map { ("X-H\($0)", "v") }
        guard case .forward = interpreter.interpret(head(.GET, "http://example.org/", fine)) else {
            Issue.record("refused \(fine.count) fields")
            return
        }
    }

    @Test func aNameWithANulByteIsNoAddress() {
        #expect(ProxyDestination.parseHost("127.0.0.1\u{0}evil.example") == nil)
        #expect(ProxyDestination.parseHost("127.0.0.1") == .address(.v4(0x7F00_0001)))
        #expect(ProxyDestination.parseHost("[::1]") != nil)
        #expect(ProxyDestination.parseHost("::1\u{0}") == nil)
    }

    @Test func repeatedEqualContentLengthIsFine() {
        guard case .forward = interpreter.interpret(head(.POST, "http://example.org/", [("Content-Length", "5"), ("Content-Length", "5")])) else {
            Issue.record("refused")
            return
        }
    }

    @Test func proxyAuthorizationBasic() {
        let authenticating = HTTPProxyRequestInterpreter(credentials: ProxyCredentials(["bob": "pa:ss"]))
        guard case .refuse(let missing) = authenticating.interpret(head(.GET, "http://example.org/")) else {
            Issue.record("no 407")
            return
        }
        #expect(missing.status == .proxyAuthenticationRequired)
        #expect(missing.headers.first?.0 == "Proxy-Authenticate")
        let good = "Basic " + Data("bob:pa:ss".utf8).base64EncodedString()
        let bad = "Basic " + Data("bob:pass".utf8).base64EncodedString()
        guard case .forward(_, let forwarded, "bob") = authenticating.interpret(head(.GET, "http://example.org/", [("Proxy-Authorization", good)])) else {
            Issue.record("good credentials refused")
            return
        }
        #expect(forwarded.headers["Proxy-Authorization"].isEmpty)
        guard case .refuse(let wrong) = authenticating.interpret(head(.GET, "http://example.org/", [("Proxy-Authorization", bad)])) else {
            Issue.record("bad credentials accepted")
            return
        }
        #expect(wrong.status == .proxyAuthenticationRequired)
    }

    @Test func responsesLoseHopByHopFields() {
        let stripped = HTTPProxyRequestInterpreter.stripHopByHop(HTTPHeaders([("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Content-Type", "text/plain")]))
        #expect(stripped.map(\.name) == ["Content-Type"])
    }
}
