import Logging
import NIOCore
import NIOPosix
import RSerPoolCore

#if canImport(Glibc)
import Glibc
#endif

/// On a listening channel: logs accept failures (out of descriptors: EMFILE/ENFILE, out of
/// memory) at most once per 10 s with the count left out, before NIO's `AcceptBackoffHandler`
/// pauses accepting for a second. Without it the listener backs off silently.
public final class AcceptErrorLogger: ChannelInboundHandler {
    public typealias InboundIn = Channel
    private let logger: Logger
    private var throttle = LogThrottle<Int32>(interval: .seconds(10))

    public init(logger: Logger) {
        self.logger = logger
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let io = error as? IOError {
            let code = io.errnoCode
            if let suppressed = throttle.admit(code, now: .now()) {
                let hint = code == EMFILE || code == ENFILE ? "out of file descriptors: raise the limit (LimitNOFILE=, ulimit -n) or lower the connection caps" : "accept failed"
                var metadata: Logger.Metadata = ["errno": "\(code)", "error": "\(io)", "hint": "\(hint)"]
                if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
                logger.error("cannot accept connections; backing off", metadata: metadata)
            }
        }
        context.fireErrorCaught(error)
    }
}
