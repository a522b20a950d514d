import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The paths benchmark's two ends, run as `edgepool bench paths --serve-…` inside its
/// namespaces: a sink that takes any number of connections and discards what they send, and
/// clients that hold connections open and send 64 bytes on each every second.
public enum PathBenchPeers {
    /// Accepts on 127.0.0.1:port and reads everything, on one thread (poll over every socket).
    public static func serveSink(port: Int) throws -> Never {
        BenchSocket.raiseFileLimit(connections: 10_000)
        let (listener, _) = try BenchSocket.listen(mptcp: false, port: port)
        print("sink listening on 127.0.0.1:\(port)")
        fflush(nil)
        var entries = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            guard poll(&entries, nfds_t(entries.count), 1000) > 0 else { continue }
            var closed: Set<Int32> = []
            for entry in entries where entry.revents != 0 {
                if entry.fd == listener {
                    let fd = accept(listener, nil, nil)
                    if fd >= 0 { entries.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 {
                    close(entry.fd)
                    closed.insert(entry.fd)
                }
            }
            if !closed.isEmpty { entries.removeAll { closed.contains($0.fd) } }
            for index in entries.indices { entries[index].revents = 0 }
        }
    }

    /// Opens `count` TCP connections to 127.0.0.1:port, says `clients connected N`, then sends
    /// 64 bytes on each every second and says `clients open K` (K: those whose send worked).
    public static func driveClients(count: Int, port: Int) throws -> Never {
        BenchSocket.raiseFileLimit(connections: count)
        var sockets: [Int32] = []
        for _ in 0..<count {
            sockets.append(try BenchSocket.connect(port: port, mptcp: false))
        }
        print("clients connected \(sockets.count)")
        fflush(nil)
        let payload = [UInt8](repeating: 0x61, count: 64)
        var open = Set(sockets)
        while true {
            let started = Date()
            for fd in sockets where open.contains(fd) {
                if (try? BenchSocket.send(fd, payload)) == nil { open.remove(fd) }
            }
            print("clients open \(open.count)")
            fflush(nil)
            let spent = Date().timeIntervalSince(started)
            if spent < 1 { usleep(useconds_t((1 - spent) * 1e6)) }
        }
    }
}
