import CHDF5
import Foundation

/// An output file that appears under its final name only when complete and checked.
///
/// Before anything is written, the output path is resolved and checked (`OutputPath`: not a
/// device, FIFO, socket or directory, not a file this command reads, not given twice), and
/// temporary files that killed runs left for it are removed. Everything is then written to a
/// hidden temporary file in the output's folder (so the final rename is atomic on one file
/// system). `commit()` closes it, checking that every write reached the file, flushes it to
/// disk, opens it again read-only as a check, and only then renames it over the final name. Any
/// failure on the way (a full disk at close, an I/O error) is thrown with the output's name and
/// the cause, the temporary file is removed and the previous output stays as it was. A file that
/// is never committed (an error, a cancellation) is removed.
/// An output written under a temporary name, then `prepare`d (closed, flushed, checked) and
/// `publish`ed (renamed into place); `abandon` removes it. Outputs of one command are
/// committed together with `AtomicOutputFile.commit(_:)`.
public protocol StagedOutput: AnyObject {
    func prepare() throws
    func publish() throws
    func abandon()
}

public final class AtomicOutputFile: StagedOutput, @unchecked Sendable {
    /// Throws when the process was asked to stop (set by the command line to the engines'
    /// cancellation check); consulted once outputs are prepared, before any is renamed.
    nonisolated(unsafe) public static var cancellationCheck: (() throws -> Void)?

    /// The output's resolved path (symlinks followed).
    public let finalPath: String
    public let output: OutputPath
    public let temporaryPath: String
    /// The open temporary file. `reopen()` replaces it after `closeForReading()`.
    public private(set) var file: HDF5File
    private var finished = false

    public init(_ path: String) throws {
        output = try OutputPath.claimed(path)
        finalPath = output.resolved
        temporaryPath = output.temporaryPath()
        do {
            file = try HDF5File.create(temporaryPath, displayPath: path)
        } catch {
            PendingOutputs.release(output)
            throw error
        }
        PartialFiles.register(temporaryPath)
    }

    deinit { if !finished { abandon() } }

    /// Closes the file, checks it and moves it to its final name, replacing any older file there.
    public func commit() throws {
        try AtomicOutputFile.commit([self])
    }

    /// Commits several outputs of one command together: each is closed, flushed and checked
    /// first, and only when all of them are sound are they renamed into place.
    public static func commit(_ outputs: [any StagedOutput]) throws {
        do {
            for output in outputs { try output.prepare() }
            // A stop requested while the outputs were being finished still wins: nothing is
            // replaced. (One requested after this point finds the command done.)
            try cancellationCheck?()
            for output in outputs { try output.publish() }
        } catch {
            for output in outputs { output.abandon() }
            throw error
        }
    }

    private var prepared = false

    /// Close, flush to disk, read back.
    public func prepare() throws {
        guard !finished, !prepared else { return }
        prepared = true
        do {
            try file.finish()
            let syncError = DiskSync.file(temporaryPath)
            if syncError != 0 {
                throw SimjobError("\(output.given): cannot flush the output to disk: \(String(cString: strerror(syncError)))")
            }
            try verifyReadable()
        } catch let error as SimjobError {
            throw SimjobError(error.message.replacingOccurrences(of: temporaryPath, with: output.given), kind: error.kind)
        }
    }

    /// The rename into place, after a last check that the output is not an input.
    public func publish() throws {
        guard !finished else { return }
        try output.publish(temporaryPath)
        finished = true
    }

    /// Opens the finished temporary file read-only and reads its structure: what HDF5 wrote can
    /// be read back before it replaces anything.
    private func verifyReadable() throws {
        let check: HDF5File
        do {
            check = try HDF5File.open(temporaryPath, displayPath: output.given, registerInput: false)
        } catch let error as SimjobError {
            throw SimjobError("\(output.given): the written file does not read back (\(error.message)); nothing was replaced")
        }
        defer { check.close() }
        for name in check.datasetPaths() { _ = try check.dataset(name) }
    }

    /// Closes the temporary file so it can be opened read-only by path (HDF5 does not allow a
    /// file to be open for writing and reading at once); `reopen()` continues writing.
    public func closeForReading() throws {
        try file.finish()
    }

    /// Opens the temporary file again for writing after `closeForReading()`.
    public func reopen() throws {
        file = try HDF5File.open(temporaryPath, writable: true, displayPath: output.given)
    }

    /// Closes and deletes the temporary file.
    public func abandon() {
        guard !finished else { return }
        finished = true
        if !prepared { file.close() }
        output.discard(temporaryPath)
    }
}

/// A small non-HDF5 output (a plot, a state file) written the same way: checked path, claimed
/// against the command's other outputs, temporary name, flushed to disk, renamed into place.
public final class AtomicBytesFile: StagedOutput, @unchecked Sendable {
    public let output: OutputPath
    let temporary: String
    private var finished = false

    /// Checks and claims `path`; nothing is written until `write(_:)`.
    public init(_ path: String) throws {
        output = try OutputPath.claimed(path)
        temporary = output.temporaryPath()
    }

    deinit { abandon() }

    /// Writes the bytes to the temporary file and flushes them to disk.
    public func write(_ data: Data) throws {
        PartialFiles.register(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            throw SimjobError("\(output.given): cannot create the output: \(String(cString: strerror(errno)))")
        }
        var failure: Int32 = 0
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0 && fsync(descriptor) != 0 { failure = errno }
        if Glibc.close(descriptor) != 0 && failure == 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw SimjobError("\(output.given): cannot write the output: \(String(cString: strerror(failure)))")
        }
    }

    public func prepare() throws {
        guard access(temporary, F_OK) == 0 else { throw SimjobError("\(output.given): nothing was written") }
    }

    public func publish() throws {
        guard !finished else { return }
        try output.publish(temporary)
        finished = true
    }

    public func abandon() {
        guard !finished else { return }
        finished = true
        output.discard(temporary)
    }
}

/// One small output written whole at once (`AtomicBytesFile`, committed alone).
public enum AtomicDataFile {
    public static func write(_ data: Data, to path: String) throws {
        let file = try AtomicBytesFile(path)
        try file.write(data)
        try AtomicOutputFile.commit([file])
    }
}

/// Temporary files being written right now, removed by the signal handlers of a process that
/// is killed by a second signal (the first one stops work at a block boundary, which abandons
/// them in the ordinary way).
public enum PartialFiles {
    nonisolated(unsafe) private static var slots = [UnsafeMutablePointer<CChar>?](repeating: nil, count: 64)
    private static let lock = NSLock()

    static func register(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        if let index = slots.firstIndex(where: { $0 == nil }) { slots[index] = strdup(path) }
    }

    static func unregister(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        for index in slots.indices {
            if let slot = slots[index], String(cString: slot) == path {
                slots[index] = nil
                free(slot)
            }
        }
    }

    /// Unlinks every registered temporary file; async-signal-safe apart from reading the table.
    public static func removeAllNow() {
        for slot in slots { if let slot { unlink(slot) } }
    }
}

extension OutputPath {
    /// Resolves and checks an output path, claims it for this command and removes the stale
    /// temporary files of killed runs writing it.
    static func claimed(_ path: String) throws -> OutputPath {
        let output = try OutputPath(path)
        try output.checkNotAnInput()
        try PendingOutputs.claim(output)
        output.removeStalePartials()
        return output
    }

    /// Renames a finished temporary file into place, after a last check that the output is not
    /// an input (inputs opened after the output was created count too); releases the claim.
    func publish(_ temporary: String) throws {
        try checkNotAnInput()
        guard rename(temporary, resolved) == 0 else {
            throw SimjobError("\(given): cannot move the finished output into place: \(String(cString: strerror(errno)))")
        }
        PendingOutputs.release(self)
        PartialFiles.unregister(temporary)
        DiskSync.folder(folder)
    }

    /// Removes a temporary file that will not be published and releases the claim.
    func discard(_ temporary: String) {
        unlink(temporary)
        PendingOutputs.release(self)
        PartialFiles.unregister(temporary)
    }
}
