import Foundation
import NIOHTTP1

/// What the HTTP proxy does with a request head (RFC 9110 §7.3.2, RFC 9112 §3.2 and §6.3).
public enum HTTPProxyDecision: Sendable, Equatable {
    /// CONNECT host:port: open a tunnel.
    case tunnel(ProxyDestination, user: String?)
    /// An absolute-form request: send `head` (origin-form, hop-by-hop fields removed) to the destination.
    case forward(ProxyDestination, head: HTTPRequestHead, user: String?)
    /// Answer with this status and close.
    case refuse(HTTPProxyRefusal)
}

/// A refused request: the status, a text for the body and the log, and extra response fields.
public struct HTTPProxyRefusal: Sendable, Equatable, Error, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var reason: String
    public var headers: [(String, String)]

    public init(_ status: HTTPResponseStatus, _ reason: String, headers: [(String, String)] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    public var description: String { "\(status.code) \(status.reasonPhrase): \(reason)" }

    public static func == (a: Self, b: Self) -> Bool {
        a.status == b.status && a.reason == b.reason && a.headers.map { "\($0.0):\($0.1)" } == b.headers.map { "\($0.0):\($0.1)" }
    }
}

/// Reads an HTTP proxy request head: who may ask, where it goes, and whether its framing can be
/// trusted. Pure: the NIO front end feeds it decoded heads.
public struct HTTPProxyRequestInterpreter: Sendable {
    /// Fields that describe one hop and are never forwarded (RFC 9110 §7.6.1), plus the
    /// proxy's own credentials.
    public static let hopByHopFields: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
        "te", "trailer", "upgrade",
    ]

    public var credentials: ProxyCredentials?
    /// Sent in the Via field of forwarded requests.
    public var viaName: String

    public init(credentials: ProxyCredentials?, viaName: String = "edgepool") {
        self.credentials = credentials
        self.viaName = viaName
    }

    public func interpret(_ head: HTTPRequestHead) -> HTTPProxyDecision {
        var user: String?
        if let credentials {
            guard let value = head.headers.first(name: "proxy-authorization"),
                  let verified = credentials.verify(proxyAuthorization: value) else {
                return .refuse(HTTPProxyRefusal(.proxyAuthenticationRequired, "proxy authentication required",
                                                headers: [("Proxy-Authenticate", "Basic realm=\"\(viaName)\"")]))
            }
            user = verified
        }
        if let refusal = Self.sizeProblem(head) { return .refuse(refusal) }
        if let refusal = Self.framingProblem(head) { return .refuse(refusal) }

        if head.method == .CONNECT {
            guard let destination = Self.parseAuthority(Substring(head.uri), defaultPort: nil) else {
                return .refuse(HTTPProxyRefusal(.badRequest, "CONNECT needs host:port, got '\(head.uri.prefix(100))'"))
            }
            return .tunnel(destination, user: user)
        }
        let uri = Substring(head.uri)
        guard let schemeEnd = uri.range(of: "://") else {
            return .refuse(HTTPProxyRefusal(.badRequest, "a proxy request needs an absolute URI (http://host/path), got '\(uri.prefix(100))'"))
        }
        let scheme = uri[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" else {
            return .refuse(HTTPProxyRefusal(.badRequest, "scheme '\(scheme.prefix(20))' is not forwarded; use CONNECT for https"))
        }
        let rest = uri[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard let destination = Self.parseAuthority(authority, defaultPort: 80) else {
            return .refuse(HTTPProxyRefusal(.badRequest, "cannot read the host in '\(uri.prefix(100))'"))
        }
        var path = String(rest[authorityEnd...])
        if let fragment = path.firstIndex(of: "#") { path = String(path[..<fragment]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }

        var forwarded = HTTPRequestHead(version: head.version, method: head.method, uri: path)
        let listed = Set(head.headers["connection"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if Self.hopByHopFields.contains(lower) || listed.contains(lower) || lower == "host" { continue }
            // Framing is rebuilt below from what was checked, never copied (RFC 9112 §6.3).
            if lower == "content-length" || lower == "transfer-encoding" { continue }
            forwarded.headers.add(name: name, value: value)
        }
        if Self.isChunked(head.headers) {
            forwarded.headers.add(name: "Transfer-Encoding", value: "chunked")
        } else if let length = head.headers["content-length"].first?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces) {
            forwarded.headers.add(name: "Content-Length", value: length)
        }
        forwarded.headers.replaceOrAdd(name: "Host", value: String(authority))
        let via = "\(head.version.major).\(head.version.minor) \(viaName)"
        forwarded.headers.add(name: "Via", value: via)
        return .forward(destination, head: forwarded, user: user)
    }

    /// Removes hop-by-hop fields from a response before it goes back to the client.
    public static func stripHopByHop(_ headers: HTTPHeaders) -> HTTPHeaders {
        let listed = Set(headers["connection"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        var result = HTTPHeaders()
        for (name, value) in headers where !hopByHopFields.contains(name.lowercased()) && !listed.contains(name.lowercased()) {
            result.add(name: name, value: value)
        }
        return result
    }

    /// A head past `ProxyLimits.maximumHTTPHeaderCount` fields or `maximumHTTPHeadLength`
    /// bytes is refused with 431 (RFC 6585 §5).
    public static func sizeProblem(_ head: HTTPRequestHead) -> HTTPProxyRefusal? {
        if head.headers.count > ProxyLimits.maximumHTTPHeaderCount {
            return HTTPProxyRefusal(.requestHeaderFieldsTooLarge, "\(head.headers.count) header fields; at most \(ProxyLimits.maximumHTTPHeaderCount)")
        }
        var length = head.uri.utf8.count + 16
        for (name, value) in head.headers { length += name.utf8.count + value.utf8.count + 4 }
        if length > ProxyLimits.maximumHTTPHeadLength {
            return HTTPProxyRefusal(.requestHeaderFieldsTooLarge, "request head of about \(length) bytes; at most \(ProxyLimits.maximumHTTPHeadLength)")
        }
        return nil
    }

    /// Whether the body is chunked (after `framingProblem` passed: one coding, "chunked").
    static func isChunked(_ headers: HTTPHeaders) -> Bool {
        headers["transfer-encoding"].contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "chunked" }
    }

    /// Request smuggling defences (RFC 9112 §6.1, §6.3) for a whole head: Transfer-Encoding in
    /// an HTTP/1.0 request, any coding but a single `chunked`, and framing fields in disguise
    /// (`Transfer_Encoding`, `Content Length`) are refused, besides what `framingProblem(_:)`
    /// refuses in the fields alone.
    public static func framingProblem(_ head: HTTPRequestHead) -> HTTPProxyRefusal? {
        for (name, _) in head.headers {
            let folded = name.lowercased().replacingOccurrences(of: "_", with: "-").replacingOccurrences(of: " ", with: "-")
            let lower = name.lowercased()
            if (folded == "transfer-encoding" || folded == "content-length") && lower != folded {
                return HTTPProxyRefusal(.badRequest, "field '\(name.prefix(40))' looks like \(folded) (possible request smuggling)")
            }
        }
        let codings = head.headers["transfer-encoding"]
        if !codings.isEmpty && head.version.major == 1 && head.version.minor == 0 {
            return HTTPProxyRefusal(.badRequest, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1; possible request smuggling)")
        }
        if let refusal = framingProblem(head.headers) { return refusal }
        let listed = codings.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
        if !listed.isEmpty && (listed.count != 1 || listed[0].trimmingCharacters(in: .whitespaces).lowercased() != "chunked") {
            return HTTPProxyRefusal(.notImplemented, "Transfer-Encoding '\(codings.joined(separator: ", ").prefix(60))' is not supported; only chunked")
        }
        return nil
    }

    /// Request smuggling defences (RFC 9112 §6.3): a message with both Content-Length and
    /// Transfer-Encoding, several differing Content-Lengths, a Content-Length that is not a
    /// number, or a Transfer-Encoding whose last coding is not chunked is refused.
    public static func framingProblem(_ headers: HTTPHeaders) -> HTTPProxyRefusal? {
        let lengths = headers["content-length"].flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let codings = headers["transfer-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if !lengths.isEmpty && !codings.isEmpty {
            return HTTPProxyRefusal(.badRequest, "both Content-Length and Transfer-Encoding (possible request smuggling)")
        }
        if let first = lengths.first {
            guard lengths.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && $0.utf8.count <= 18 }) else {
                return HTTPProxyRefusal(.badRequest, "Content-Length is not a number")
            }
            if lengths.contains(where: { UInt64($0) != UInt64(first) }) {
                return HTTPProxyRefusal(.badRequest, "conflicting Content-Length values (possible request smuggling)")
            }
        }
        if !codings.isEmpty && codings.last != "chunked" {
            return HTTPProxyRefusal(.badRequest, "Transfer-Encoding must end with chunked")
        }
        if codings.filter({ $0 == "chunked" }).count > 1 {
            return HTTPProxyRefusal(.badRequest, "chunked applied more than once")
        }
        return nil
    }

    /// "host:port", "[v6]:port" or (with a default port) "host". Nil if malformed.
    public static func parseAuthority(_ text: Substring, defaultPort: UInt16?) -> ProxyDestination? {
        var hostPart = text
        var port = defaultPort
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("]") {
            let portText = text[text.index(after: colon)...]
            guard !portText.isEmpty, portText.utf8.count <= 5, let value = UInt16(portText), value > 0 else { return nil }
            port = value
            hostPart = text[..<colon]
            // "::1:80" without brackets is ambiguous: refuse.
            if hostPart.contains(":") && !hostPart.hasPrefix("[") { return nil }
        } else if text.contains(":") && !text.hasPrefix("[") {
            return nil
        }
        guard let port, let host = ProxyDestination.parseHost(hostPart) else { return nil }
        return ProxyDestination(host: host, port: port)
    }
}
