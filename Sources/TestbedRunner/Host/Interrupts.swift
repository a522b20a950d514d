import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (or SIGTERM) while a testbed is up: the handler removes what was created and exits
/// with 130; long loops check ``received`` between steps and stop.
public enum Interrupts {
    /// Touched only under the lock (the signal sources are not Sendable themselves).
    private struct State: @unchecked Sendable {
        var received = false
        var cleanup: (@Sendable () -> Void)?
        var sources: [DispatchSourceSignal] = []
    }

    private static let state = NIOLockedValueBox(State())

    /// Whether SIGINT or SIGTERM came.
    public static var received: Bool { state.withLockedValue { $0.received } }

    /// Installs `body` as what runs on SIGINT/SIGTERM (it replaces an earlier one).
    public static func onInterrupt(_ body: @escaping @Sendable () -> Void) {
        state.withLockedValue { state in
            state.cleanup = body
            guard state.sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    let cleanup = Self.state.withLockedValue { state -> (@Sendable () -> Void)? in
                        state.received = true
                        return state.cleanup
                    }
                    cleanup?()
                    exit(130)
                }
                source.resume()
                state.sources.append(source)
            }
        }
    }
}
