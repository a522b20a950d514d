import Testing
import RSerPoolCore

/// A proxy PE's hysteresis: the legacy server joins after 2 passed checks, leaves after 3 failed.
@Suite struct ProxyHealthTests {
    @Test func thresholdsDecideAndASingleBlipChangesNothing() {
        var health = ProxyHealth(failuresForDown: 3, successesForUp: 2)
        #expect(health.checked(true) == nil)
        #expect(health.checked(true) == .up)
        #expect(health.isUp)
        #expect(health.checked(false) == nil)
        #expect(health.checked(true) == nil, "one failed check between passes is a blip")
        #expect(health.checked(false) == nil)
        #expect(health.checked(false) == nil)
        #expect(health.checked(false) == .down)
        #expect(!health.isUp)
        #expect(health.checked(false) == nil, "already down")
        #expect(health.checked(true) == nil)
        #expect(health.checked(false) == nil, "the success streak starts again")
        #expect(health.checked(true) == nil)
        #expect(health.checked(true) == .up)
    }
}

/// The HTTP health check's request and its reading of status lines (RFC 9112 §4).
@Suite struct HTTPHealthCheckTests {
    @Test func theRequestIsAGETThatAsksTheServerToClose() {
        #expect(String(decoding: HTTPHealthCheck.request(path: "/healthz", host: "192.0.2.80:80"), as: UTF8.self)
                == "GET /healthz HTTP/1.1\r\nHost: 192.0.2.80:80\r\nUser-Agent: edgepool-proxy-pe\r\nConnection: close\r\n\r\n")
        #expect(HTTPHealthCheck.isValidPath("/healthz?full=1") && !HTTPHealthCheck.isValidPath("healthz") && !HTTPHealthCheck.isValidPath("/a b")
                && !HTTPHealthCheck.isValidPath("/\r\nX: y"))
    }

    @Test func twoAndThreeHundredsPassEverythingElseFails() {
        func verdict(_ text: String) -> HTTPHealthCheck.Verdict { HTTPHealthCheck.verdict(Array(text.utf8)) }
        #expect(verdict("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n") == .passed(status: 200))
        #expect(verdict("HTTP/1.0 301 Moved Permanently\r\n") == .passed(status: 301))
        #expect(verdict("HTTP/1.1 204\n") == .passed(status: 204), "no reason phrase, bare LF")
        #expect(verdict("HTTP/1.1 404 Not Found\r\n") == .failed("HTTP 404"))
        #expect(verdict("HTTP/1.1 503 Service Unavailable\r\n") == .failed("HTTP 503"))
        #expect(verdict("HTTP/1.1 20") == .incomplete, "the status line is not complete yet")
        #expect(verdict("SSH-2.0-OpenSSH_9.6\r\n") == .failed("not an HTTP status line: 'SSH-2.0-OpenSSH_9.6'"))
        #expect(verdict("HTTP/1.1 2000 OK\r\n") == .failed("not an HTTP status line: 'HTTP/1.1 2000 OK'"))
        #expect(HTTPHealthCheck.verdict([UInt8](repeating: 0x41, count: 1024)) == .failed("no status line in 1024 bytes"))
    }
}

