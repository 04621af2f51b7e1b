import Foundation
import Synchronization

/// A process-wide "stop soon" flag. Long loops check it once per block (never per element) and
/// throw `SimjobError.cancelled`, so an interrupted command stops at a block boundary and its
/// atomic outputs are abandoned rather than half-written.
public enum Cancellation {
    private static let flag = Atomic<Bool>(false)

    public static var isRequested: Bool { flag.load(ordering: .relaxed) }

    public static func request() { flag.store(true, ordering: .relaxed) }

    /// For tests: clears a request.
    public static func reset() { flag.store(false, ordering: .relaxed) }

    /// Throws `SimjobError.cancelled` when a stop was requested.
    public static func check() throws {
        if isRequested { throw SimjobError.cancelled }
    }

    /// Makes SIGINT and SIGTERM request a stop instead of killing the process; a second
    /// SIGINT kills it at once.
    public static func installSignalHandlers() {
        // A parent may have started us with these signals blocked (inherited masks): unblock.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        signal(SIGINT) { _ in
            if Cancellation.isRequested { _exit(130) }
            Cancellation.request()
        }
        signal(SIGTERM) { _ in Cancellation.request() }
    }
}
