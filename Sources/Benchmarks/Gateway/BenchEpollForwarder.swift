import CLinuxRelay
import Foundation
import ProcessSupport

#if canImport(Glibc)
import Glibc
#endif

/// A second baseline for the gateway benchmark: a TCP forwarder on its own epoll loop (one
/// per core, SO_REUSEPORT listeners) that relays with splice(2) through a pipe per direction.
/// No limits, policy, telemetry or timers. It answers one question: how much of the gap to
/// HAProxy is SwiftNIO's channel machinery, and would an own data path close it?
enum BenchEpollForwarder {
    static let pipeBytes = 64 * 1024

    /// One direction: source → pipe → destination.
    final class Direction {
        let source: Int32, destination: Int32
        let pipeRead: Int32, pipeWrite: Int32
        var inPipe = 0
        var sourceEnded = false
        var shutDown = false
        var destinationBlocked = false

        init(source: Int32, destination: Int32) throws {
            var fds: [Int32] = [0, 0]
            guard c_linux_relay_pipe(&fds) == 0 else { throw BenchSocket.Failure("pipe2: errno \(errno)") }
            self.source = source
            self.destination = destination
            (pipeRead, pipeWrite) = (fds[0], fds[1])
        }

        /// Moves what it can; false when the connection failed.
        func pump() -> Bool {
            while true {
                if inPipe > 0 {
                    let n = c_linux_relay_splice(pipeRead, destination, UInt(inPipe))
                    if n > 0 { inPipe -= Int(n); destinationBlocked = false; continue }
                    if n < 0 && errno == EAGAIN { destinationBlocked = true; return true }
                    return false
                }
                if sourceEnded {
                    if !shutDown { shutdown(destination, Int32(SHUT_WR)); shutDown = true }
                    return true
                }
                let n = c_linux_relay_splice(source, pipeWrite, UInt(BenchEpollForwarder.pipeBytes))
                if n > 0 { inPipe += Int(n); continue }
                if n == 0 { sourceEnded = true; continue }
                return errno == EAGAIN
            }
        }

        var finished: Bool { shutDown && inPipe == 0 }

        func close() {
            Glibc.close(pipeRead)
            Glibc.close(pipeWrite)
        }
    }

    final class Connection {
        let client: Int32, upstream: Int32
        var connected = false
        var up: Direction?, down: Direction?
        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }
    }

    /// Listens on an ephemeral loopback port (one listener per thread), prints it, forwards
    /// every connection to `origin`; runs until killed.
    static func serveUntilKilled(origin: Int) throws -> Never {
        // splice(2) into a socket the peer closed raises SIGPIPE (there is no MSG_NOSIGNAL for it).
        signal(SIGPIPE, SIG_IGN)
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let first = try listener(port: 0)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(first, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        var listeners = [first]
        for _ in 1..<threads { listeners.append(try listener(port: port)) }
        for fd in listeners { Thread { loop(listener: fd, origin: origin) }.start() }
        ReadyLine(daemon: "bench-forwarder", ["listen": "127.0.0.1:\(port)", "kind": "epoll+splice"]).announce()
        fflush(nil)
        while true { sleep(3600) }
    }

    static func listener(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 1024) == 0 else { throw BenchSocket.Failure("listen: errno \(errno)") }
        return fd
    }

    static func loop(listener: Int32, origin: Int) {
        let epoll = c_linux_relay_epoll_create()
        func control(_ op: Int, _ fd: Int32, _ events: UInt32) { _ = c_linux_relay_epoll_ctl(epoll, Int32(op), fd, events) }
        control(C_LINUX_RELAY_ADD, listener, UInt32(C_LINUX_RELAY_IN))
        var connections: [Int32: Connection] = [:]
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = UInt16(origin).bigEndian
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        var readyFDs = [Int32](repeating: 0, count: 64)
        var readyEvents = [UInt32](repeating: 0, count: 64)
        var one: Int32 = 1

        func interest(_ connection: Connection) {
            guard let up = connection.up, let down = connection.down else { return }
            // client: read while client→upstream has room, write when upstream→client is blocked.
            var clientEvents: UInt32 = 0, upstreamEvents: UInt32 = 0
            if !up.sourceEnded && up.inPipe == 0 { clientEvents |= UInt32(C_LINUX_RELAY_IN) }
            if down.destinationBlocked { clientEvents |= UInt32(C_LINUX_RELAY_OUT) }
            if !down.sourceEnded && down.inPipe == 0 { upstreamEvents |= UInt32(C_LINUX_RELAY_IN) }
            if up.destinationBlocked { upstreamEvents |= UInt32(C_LINUX_RELAY_OUT) }
            control(C_LINUX_RELAY_MOD, connection.client, clientEvents)
            control(C_LINUX_RELAY_MOD, connection.upstream, upstreamEvents)
        }
        func finish(_ connection: Connection) {
            connections[connection.client] = nil
            connections[connection.upstream] = nil
            close(connection.client)
            close(connection.upstream)
            connection.up?.close()
            connection.down?.close()
        }
        func pump(_ connection: Connection) {
            guard let up = connection.up, let down = connection.down else { return }
            guard up.pump(), down.pump() else { return finish(connection) }
            if up.finished && down.finished { return finish(connection) }
            interest(connection)
        }

        while true {
            let count = c_linux_relay_epoll_wait(epoll, &readyFDs, &readyEvents, 64, -1)
            guard count > 0 else { continue }
            for index in 0..<Int(count) {
                let fd = readyFDs[index], events = readyEvents[index]
                if fd == listener {
                    while true {
                        let client = c_linux_relay_accept(listener)
                        guard client >= 0 else { break }
                        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
                        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                        setsockopt(upstream, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
                        let result = withUnsafePointer(to: &target) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                        guard result == 0 || errno == EINPROGRESS else { close(client); close(upstream); continue }
                        let connection = Connection(client: client, upstream: upstream)
                        connections[client] = connection
                        connections[upstream] = connection
                        control(C_LINUX_RELAY_ADD, client, 0)
                        control(C_LINUX_RELAY_ADD, upstream, UInt32(C_LINUX_RELAY_OUT))
                    }
                    continue
                }
                guard let connection = connections[fd] else { continue }
                if !connection.connected {
                    var error: Int32 = 0
                    var length = socklen_t(4)
                    getsockopt(connection.upstream, SOL_SOCKET, SO_ERROR, &error, &length)
                    guard error == 0, let up = try? Direction(source: connection.client, destination: connection.upstream),
                          let down = try? Direction(source: connection.upstream, destination: connection.client) else {
                        finish(connection)
                        continue
                    }
                    connection.connected = true
                    connection.up = up
                    connection.down = down
                }
                if events & (UInt32(C_LINUX_RELAY_ERR) | UInt32(C_LINUX_RELAY_HUP)) != 0 && events & UInt32(C_LINUX_RELAY_IN) == 0 {
                    finish(connection)
                    continue
                }
                pump(connection)
            }
        }
    }
}
