import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RSerPool
import Testing

/// Real sockets on loopback: MPTCP listeners and connections keep TCP_NODELAY.
@Suite struct StreamTransportTests {
    func noDelay(_ channel: Channel) async throws -> CInt {
        let provider = try #require(channel as? SocketOptionProvider)
        return try await provider.unsafeGetSocketOption(level: .tcp, name: .tcp_nodelay).get()
    }

    @Test(arguments: [TransportProtocol.mptcp, .tcp])
    func bothEndsHaveNoDelayAndMPTCPIsReal(transport: TransportProtocol) async throws {
        let accepted = NIOLockedValueBox<Channel?>(nil)
        let group = MultiThreadedEventLoopGroup.singleton
        let (server, bound) = try await StreamTransport.bind(try SocketAddress(ipAddress: "127.0.0.1", port: 0), transport: transport, group: group) { channel in
            accepted.withLockedValue { $0 = channel }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        defer { server.close(promise: nil) }
        #expect(bound == transport)
        let client = try await StreamTransport.connect(to: server.localAddress!, transport: transport, group: group) { $0.eventLoop.makeSucceededVoidFuture() }.get()
        defer { client.close(promise: nil) }
        var child: Channel?
        for _ in 0..<100 where child == nil {
            child = accepted.withLockedValue { $0 }
            if child == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let serverSide = try #require(child)
        #expect(try await noDelay(client) != 0)
        #expect(try await noDelay(serverSide) != 0)
        #expect(try await StreamTransport.isMPTCP(client).get() == (transport == .mptcp))
    }
}
