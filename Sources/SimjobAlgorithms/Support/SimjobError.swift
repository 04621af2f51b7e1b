/// A user-facing problem, in one line that names the file, dataset, field or line at fault.
public struct SimjobError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// Work stopped at a block boundary because the user asked (Ctrl-C); nothing was written.
    public static let cancelled = SimjobError("cancelled: stopped at a block boundary, no output written")
}
