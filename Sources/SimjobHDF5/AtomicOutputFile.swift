import Foundation

/// An output file that appears under its final name only when complete.
///
/// Everything is written to a hidden temporary file in the same folder (so the final rename is
/// atomic on one file system); `commit()` closes it and renames it over the final name. A file
/// that is never committed (an error, a cancellation) is removed, so an interrupted command
/// leaves either the previous complete file or nothing.
public final class AtomicOutputFile: @unchecked Sendable {
    public let finalPath: String
    public let temporaryPath: String
    /// The open temporary file. `reopen()` replaces it after `closeForReading()`.
    public private(set) var file: HDF5File
    private var finished = false

    public init(_ finalPath: String) throws {
        let url = URL(fileURLWithPath: finalPath)
        let folder = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HDF5Error("\(finalPath): output folder \(folder) does not exist")
        }
        self.finalPath = finalPath
        self.temporaryPath = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        self.file = try HDF5File.create(temporaryPath)
    }

    deinit { if !finished { abandon() } }

    /// Closes the file and moves it to its final name, replacing any older file there.
    public func commit() throws {
        guard !finished else { return }
        finished = true
        file.close()
        guard rename(temporaryPath, finalPath) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw HDF5Error("\(finalPath): cannot move the finished output into place: \(reason)")
        }
    }

    /// Closes the temporary file so it can be opened read-only by path (HDF5 does not allow a
    /// file to be open for writing and reading at once); `reopen()` continues writing.
    public func closeForReading() {
        file.close()
    }

    /// Opens the temporary file again for writing after `closeForReading()`.
    public func reopen() throws {
        file = try HDF5File.open(temporaryPath, writable: true)
    }

    /// Closes and deletes the temporary file.
    public func abandon() {
        guard !finished else { return }
        finished = true
        file.close()
        unlink(temporaryPath)
    }
}
