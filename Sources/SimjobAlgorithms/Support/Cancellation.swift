import Foundation
@_exported import SimjobCore
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

    private static let signalNumber = Atomic<Int32>(0)

    /// Called (from the signal handler) before a second signal ends the process at once: the
    /// operations layer removes its temporary outputs here. Must be async-signal-safe.
    nonisolated(unsafe) public static var removeTemporaryFiles: (@convention(c) () -> Void)?
    nonisolated(unsafe) static var secondSignalMessage: (UnsafePointer<UInt8>, Int)?

    /// The signal that requested the stop (SIGINT, SIGTERM or SIGHUP), 0 if none.
    public static var requestingSignal: Int32 { signalNumber.load(ordering: .relaxed) }

    /// The conventional exit status of a command stopped by a signal: 128 + the signal's number
    /// (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
    public static var exitStatus: Int32 { 128 + (requestingSignal == 0 ? SIGINT : requestingSignal) }

    /// Makes SIGINT, SIGTERM and SIGHUP request a stop instead of killing the process: work stops
    /// at the next block boundary and every temporary output is removed. A second signal removes
    /// the temporary outputs and exits at once.
    public static func installSignalHandlers() {
        // A parent may have started us with these signals blocked (inherited masks): unblock.
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, number) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        // A file-size limit (ulimit -f) makes a write fail with EFBIG, reported like a full disk,
        // instead of killing the process with temporary files left behind.
        signal(SIGXFSZ, SIG_IGN)
        // Prepared here: the handler may only call async-signal-safe functions (write, _exit).
        let text = Array("error: stopped at once by a second signal; temporary outputs removed\n".utf8)
        let message = UnsafeMutablePointer<UInt8>.allocate(capacity: text.count)
        message.initialize(from: text, count: text.count)
        secondSignalMessage = (UnsafePointer(message), text.count)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number) { received in
                if Cancellation.isRequested {
                    Cancellation.removeTemporaryFiles?()
                    if let (text, count) = Cancellation.secondSignalMessage { _ = write(2, text, count) }
                    _exit(128 + received)
                }
                Cancellation.signalNumber.store(received, ordering: .relaxed)
                Cancellation.request()
            }
        }
    }
}
