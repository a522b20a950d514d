import Gateway
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import GatewayService
import RSerPool

@Suite("Gateway frontends on NIOEmbedded")
struct FrontendEmbeddedTests {
    @Test func aSOCKS5ConnectIntoAPrivateRangeIsAnsweredNotAllowedByRuleset() throws {
        let h = try FrontendHarness(.socks)
        try h.send([5, 1, 0])
        #expect(try h.replies() == [5, 0])
        try h.send([5, 1, 0, 1, 10, 0, 0, 1, 0, 80])   // CONNECT 10.0.0.1:80
        let reply = try h.replies()
        #expect(Array(reply.prefix(2)) == [5, 2], "REP 2: connection not allowed by ruleset")
        h.loop.run()
        #expect(!h.client.isActive)
    }

    @Test func aSOCKS5ClientOfferingNoAuthenticationIsRefused() throws {
        var settings = GatewaySettings()
        settings.users = ["alice": "secret"]
        let h = try FrontendHarness(.socks, settings)
        try h.send([5, 1, 0])   // offers no-auth only
        #expect(try h.replies() == [5, 0xFF])
        h.loop.run()
        #expect(!h.client.isActive)
    }

    @Test func aSOCKS5UsernameAndPasswordAreChecked() throws {
        var settings = GatewaySettings()
        settings.users = ["alice": "secret"]
        let h = try FrontendHarness(.socks, settings)
        try h.send([5, 1, 2])
        #expect(try h.replies() == [5, 2])
        try h.send([1, 5] + Array("alice".utf8) + [5] + Array("wrong".utf8))
        #expect(try h.replies() == [1, 1], "RFC 1929: failure")
        h.loop.run()
        #expect(!h.client.isActive)
    }

    @Test func aHandshakeThatDoesNotFinishIsClosedAtTheTimeout() throws {
        var settings = GatewaySettings()
        settings.handshakeTimeout = SettingDuration(.seconds(3))
        let h = try FrontendHarness(.socks, settings)
        try h.send([5, 1])   // half a greeting
        h.loop.advanceTime(by: .milliseconds(2_999))
        #expect(h.client.isActive)
        h.loop.advanceTime(by: .milliseconds(1))
        #expect(!h.client.isActive)
    }

    @Test func anHTTPProxyRequestToAPrivateAddressIsAnswered403() throws {
        let h = try FrontendHarness(.http)
        try h.send("GET http://192.168.1.1/ HTTP/1.1\r\nHost: 192.168.1.1\r\n\r\n")
        h.loop.run()
        let text = String(decoding: try h.replies(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 403"), "\(text)")
    }

    @Test func anHTTPConnectToAPortOtherThan443IsRefused() throws {
        let h = try FrontendHarness(.http)
        try h.send("CONNECT example.org:25 HTTP/1.1\r\nHost: example.org:25\r\n\r\n")
        h.loop.run()
        let text = String(decoding: try h.replies(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 403"), "\(text)")
    }

    @Test func theUpstreamRouteIsDecidedOnceFromTheMode() throws {
        func route(_ kind: GatewaySettings.Kind, _ settings: GatewaySettings = GatewaySettings()) throws -> GatewayContext.UpstreamRoute {
            try GatewayContext(configuration: try settings.configuration(kind), logger: Logger(label: "test"), loops: [EmbeddedEventLoop()]).route
        }
        guard case .direct = try route(.socks), case .direct = try route(.http) else { Issue.record("SOCKS5 and HTTP go direct"); return }
        var entry = GatewaySettings()
        entry.exit = Endpoint(host: "127.0.0.1", port: 7000)
        entry.secret = String(repeating: "k", count: 32)
        #expect(try route(.entry, entry).carriesToExit)
        guard case .direct = try route(.exit, entry) else { Issue.record("the exit goes direct"); return }
        var reverse = GatewaySettings()
        reverse.backends = [Endpoint(host: "127.0.0.1", port: 80)]
        guard case .backends(let backends) = try route(.reverse, reverse) else { Issue.record("not backends"); return }
        #expect(backends.count == 1)
        reverse.backends = nil
        reverse.pool = "WebPool"
        guard case .pool(let handle, _) = try route(.reverse, reverse) else { Issue.record("not a pool"); return }
        #expect(handle == "WebPool")
    }
}
