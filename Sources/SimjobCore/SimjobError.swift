/// A user-facing problem, in one line that names the file, dataset, field or line at fault.
///
/// The one error type every layer throws (file access, engines, operations, jobs, option
/// checks); the command line prints `error: MESSAGE` and exits with `kind`'s status.
public struct SimjobError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure, which decides the exit status.
    public enum Kind: Sendable, Equatable {
        /// Bad input, a failed read or write: exit 1.
        case failure
        /// A malformed command line (an option out of range, a malformed `--set`): exit 64.
        case usage
        /// Work stopped at a block boundary because a stop was requested: exit 128 + signal.
        case cancelled
    }

    public let message: String
    public let kind: Kind

    public init(_ message: String, kind: Kind = .failure) {
        self.message = message
        self.kind = kind
    }

    public var description: String { message }

    /// Work stopped at a block boundary because the user asked (Ctrl-C); nothing was written.
    public static let cancelled = SimjobError("cancelled: stopped at a block boundary, no output written", kind: .cancelled)
}
