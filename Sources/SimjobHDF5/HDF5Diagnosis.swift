import CHDF5
import Foundation

/// What really went wrong in the last failed HDF5 call, in words a user can act on.
///
/// HDF5 reports failures as a stack of messages (printing is silenced, see `HDF5File`); the
/// innermost says the cause: a lock held by another process, a file shorter than its header
/// says, a full disk, a filter the library lacks.
enum HDF5Diagnosis {
    /// The current error stack's descriptions, innermost first (empty when there is none).
    static func errorStack() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        sj_error_stack(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A short cause for the last failure, or nil when HDF5 gave none that helps.
    static func cause(fallbackErrno: Int32 = 0) -> String? {
        let stack = errorStack()
        sj_clear_errors()
        if stack.contains("unable to lock file") || stack.contains("lock file") {
            return "the file is locked: another process has it open for writing (HDF5 file locking); wait until that writer "
                + "closes it, or, if nothing is writing it (a crashed writer on a network file system), read it with HDF5_USE_FILE_LOCKING=FALSE"
        }
        if let range = stack.range(of: "truncated file") {
            // "truncated file: eof = 3498, sblock->base_addr = 0, stored_eof = 10496"
            let detail = stack[range.lowerBound...].prefix { $0 != "|" }
            func number(after key: String) -> String? {
                guard let at = detail.range(of: key) else { return nil }
                return String(detail[at.upperBound...].prefix { $0.isNumber })
            }
            let sizes = number(after: "eof = ").flatMap { actual in number(after: "stored_eof = ").map { "\(actual) bytes of the \($0) its header records" } }
            return "the file is truncated (\(sizes ?? "shorter than its header records")): it was not completely written or copied"
        }
        if stack.contains("No space left on device") || fallbackErrno == ENOSPC { return "no space left on device" }
        if stack.contains("Disk quota exceeded") || fallbackErrno == EDQUOT { return "disk quota exceeded" }
        if stack.contains("File too large") || fallbackErrno == EFBIG { return "file too large for this file system or limit" }
        if let range = stack.range(of: "error message = '") {
            let message = stack[range.upperBound...].prefix { $0 != "'" }
            if !message.isEmpty { return String(message) }
        }
        if fallbackErrno != 0 { return String(cString: strerror(fallbackErrno)) }
        return stack.split(separator: "|").first.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
