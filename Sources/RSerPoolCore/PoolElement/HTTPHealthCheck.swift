/// A proxy PE's HTTP health check, without sockets: the request it sends and the reading of
/// the answer's status line. A server passes with a 2xx or 3xx status; anything else — an
/// error status, no status line within ``maximumStatusLineBytes``, not HTTP — fails.
public enum HTTPHealthCheck {
    /// Bytes read for the status line at most ("HTTP/1.1 200 OK\r\n" is 17).
    public static let maximumStatusLineBytes = 1024

    /// `GET PATH HTTP/1.1` for `host` (the server's address), asking it to close afterwards.
    public static func request(path: String, host: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: edgepool-proxy-pe\r\nConnection: close\r\n\r\n".utf8)
    }

    /// A path the request line can carry: starts with "/", printable ASCII without spaces.
    public static func isValidPath(_ path: String) -> Bool {
        path.hasPrefix("/") && path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    public enum Verdict: Equatable, Sendable {
        /// More bytes are needed for the status line.
        case incomplete
        case passed(status: Int)
        case failed(String)
    }

    /// The verdict on the bytes received so far.
    public static func verdict(_ received: [UInt8]) -> Verdict {
        guard let end = received.firstIndex(of: UInt8(ascii: "\n")) else {
            return received.count >= maximumStatusLineBytes ? .failed("no status line in \(maximumStatusLineBytes) bytes") : .incomplete
        }
        var bytes = received[..<end]
        while bytes.last == UInt8(ascii: "\r") || bytes.last == UInt8(ascii: " ") { bytes = bytes.dropLast() }
        let line = String(decoding: bytes, as: UTF8.self)
        let words = line.split(separator: " ", maxSplits: 2)
        guard words.count >= 2, words[0].hasPrefix("HTTP/1."), words[1].count == 3, let status = Int(words[1]) else {
            return .failed("not an HTTP status line: '\(line.prefix(60))'")
        }
        return (200...399).contains(status) ? .passed(status: status) : .failed("HTTP \(status)")
    }
}
