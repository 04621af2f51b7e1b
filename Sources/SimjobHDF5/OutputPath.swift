import CHDF5
import Foundation
import Synchronization

/// The identity of a file on disk: two paths name the same file (through symlinks or hard links)
/// exactly when device and inode agree.
public struct FileIdentity: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    /// The identity of the file a path leads to (symlinks followed), or nil if there is none.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// Every file this process has opened for reading, so that no output can replace one of them.
public enum InputRegistry {
    private static let files = Mutex<[FileIdentity: String]>([:])

    /// Remembers `path` as an input (called by `HDF5File.open` for read-only opens).
    public static func record(_ path: String) {
        guard let identity = FileIdentity(path: path) else { return }
        files.withLock { if $0[identity] == nil { $0[identity] = path } }
    }

    /// The input path that is the same file as `identity`, if any. An input that no longer
    /// exists under its path (deleted, its inode since reused) does not count.
    public static func input(sameAs identity: FileIdentity) -> String? {
        guard let path = files.withLock({ $0[identity] }) else { return nil }
        return FileIdentity(path: path) == identity ? path : nil
    }

    /// For tests running several commands in one process.
    public static func reset() { files.withLock { $0.removeAll() } }
}

/// Where an output really goes, and the checks made before anything is written to it.
///
/// - A **symlink** is followed (hops resolved one by one, relative targets against the link's
///   folder): the file it points to is replaced, and the link stays as it is. A dangling link
///   creates its target, when the target's folder exists.
/// - A directory, device (`/dev/null`, `/dev/full`), FIFO or socket is refused: outputs are
///   regular files, written whole under a temporary name and renamed into place, which would
///   replace the device node rather than write to it.
/// - A file this command reads (same device and inode, whatever path leads to it) is refused, as
///   is one path given for two outputs of one command.
public struct OutputPath: Sendable {
    /// The path as the user gave it.
    public let given: String
    /// The resolved path the finished file is renamed to.
    public let resolved: String
    /// The folder the output (and its temporary file) lives in.
    public let folder: String

    public init(_ path: String) throws {
        given = path
        var current = path
        var hops = 0
        var info = stat()
        while lstat(current, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
            hops += 1
            guard hops <= 40 else { throw SimjobError("\(path): too many levels of symbolic links") }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(current, &buffer, buffer.count - 1)
            guard length > 0 else { throw SimjobError("\(path): cannot read the symbolic link \(current)") }
            let target = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // A relative target is relative to the link's own folder ("." for a link named bare).
            let linkFolder = (current as NSString).deletingLastPathComponent
            current = target.hasPrefix("/") || linkFolder.isEmpty ? target : linkFolder + "/" + target
        }
        if lstat(current, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw SimjobError("\(path): is a directory; give a file name for the output")
            case S_IFCHR, S_IFBLK:
                throw SimjobError("\(path): is a device; simjob writes outputs as regular files (written whole, then renamed into place)")
            case S_IFIFO: throw SimjobError("\(path): is a FIFO; simjob writes outputs as regular files")
            case S_IFSOCK: throw SimjobError("\(path): is a socket; simjob writes outputs as regular files")
            default: throw SimjobError("\(path): is not a regular file")
            }
        }
        let name = (current as NSString).lastPathComponent
        let parent = (current as NSString).deletingLastPathComponent
        let parentPath = parent.isEmpty ? "." : parent
        guard !name.isEmpty, name != ".", name != ".." else { throw SimjobError("\(path): not a file name") }
        guard let real = realpath(parentPath, nil) else {
            throw SimjobError("\(path): output folder \(parentPath) does not exist")
        }
        defer { free(real) }
        folder = String(cString: real)
        var folderInfo = stat()
        guard stat(folder, &folderInfo) == 0, (folderInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw SimjobError("\(path): \(parentPath) is not a folder")
        }
        resolved = folder == "/" ? "/" + name : folder + "/" + name
    }

    /// The file name of the resolved path.
    public var name: String { (resolved as NSString).lastPathComponent }

    /// Throws when the output is a file this process reads.
    public func checkNotAnInput() throws {
        guard let identity = FileIdentity(path: resolved), let input = InputRegistry.input(sameAs: identity) else { return }
        let alias = input == given ? "" : " (the same file as input \(input))"
        throw SimjobError("\(given): is an input of this command\(alias); writing it would destroy that input: choose another output")
    }

    // MARK: temporary files

    /// Temporary files are named `.NAME.simjob-partial-HOST-PID`: recognisable, tied to the output
    /// they would become and to the process writing them.
    public static let partialMarker = ".simjob-partial-"

    public func temporaryPath() -> String {
        folder + "/." + OutputPath.partialStem(name) + OutputPath.partialMarker + OutputPath.hostName + "-\(getpid())"
    }

    /// The output's name as its temporary files carry it: whole, or for names too long to take
    /// the suffix within a file name's 255 bytes, a prefix and a hash of the whole name.
    static func partialStem(_ name: String) -> String {
        let room = 255 - 1 - partialMarker.utf8.count - hostName.utf8.count - 12
        guard name.utf8.count > room else { return name }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let suffix = "~" + String(hash, radix: 16)
        var prefix = ""
        for character in name {
            if prefix.utf8.count + character.utf8.count + suffix.utf8.count > room { break }
            prefix.append(character)
        }
        return prefix + suffix
    }

    /// This machine's name, as temporary files and shard manifests record it.
    public static var currentHost: String { hostName }

    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name.replacingOccurrences(of: "/", with: "_")
    }()

    /// Removes temporary files that killed runs left for this output: same host, a process that
    /// no longer exists. Returns the paths removed.
    @discardableResult
    public func removeStalePartials() -> [String] {
        OutputPath.removeStalePartials(in: folder, output: OutputPath.partialStem(name))
    }

    /// Removes stale temporary files in a folder: of one output (its `partialStem`), or of every
    /// output when `output` is nil. A temporary file of a process still running (or of another host) stays.
    @discardableResult
    public static func removeStalePartials(in folder: String, output: String? = nil) -> [String] {
        let marker = partialMarker + hostName + "-"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        for entry in entries where entry.hasPrefix(".") {
            guard let range = entry.range(of: marker, options: .backwards) else { continue }
            if let output, entry[entry.index(after: entry.startIndex)..<range.lowerBound] != output { continue }
            guard let pid = Int32(entry[range.upperBound...]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }  // still running (or not ours to judge)
            if unlink(folder + "/" + entry) == 0 { removed.append(folder + "/" + entry) }
        }
        return removed
    }
}

/// The outputs this process has under way, so that one path given for two outputs (a dedup's
/// `--output` and `--write-kept`) is refused rather than written twice.
public enum PendingOutputs {
    private static let paths = Mutex<Set<String>>([])

    public static func claim(_ output: OutputPath) throws {
        let claimed = paths.withLock { $0.insert(output.resolved).inserted }
        guard claimed else { throw SimjobError("\(output.given): given for two outputs of one command") }
    }

    public static func release(_ output: OutputPath) {
        _ = paths.withLock { $0.remove(output.resolved) }
    }
}

/// Durability helpers shared by every output.
enum DiskSync {
    /// fsync of a file by path; returns errno on failure, 0 on success.
    static func file(_ path: String) -> Int32 {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return errno }
        defer { Glibc.close(descriptor) }
        return fsync(descriptor) == 0 ? 0 : errno
    }

    /// fsync of a folder, so a rename in it survives a crash (best effort: some file systems
    /// refuse it).
    static func folder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        Glibc.close(descriptor)
    }
}

/// What a finished output looked like: its size and a CRC-32 of its bytes (zlib's, several GB/s),
/// so a later run can tell that a file was truncated, replaced or edited since.
public struct FileFingerprint: Codable, Sendable, Equatable, CustomStringConvertible {
    public var size: Int64
    public var crc32: UInt32

    /// The fingerprint of a file, or of a folder (its files' names and fingerprints, in order).
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let names = (try? FileManager.default.subpathsOfDirectory(atPath: path))?.sorted() else { return nil }
            var combined: UInt32 = 0
            var total: Int64 = 0
            for name in names {
                guard let member = FileFingerprint(path: path + "/" + name) else { continue }
                let text = "\(name):\(member.size):\(member.crc32)\n"
                combined = text.utf8CString.withUnsafeBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: buffer.count) { UInt32(CHDF5.crc32(uLong(combined), $0, uInt(buffer.count - 1))) }
                }
                total += member.size
            }
            self.init(size: total, crc32: combined)
            return
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { Glibc.close(descriptor) }
        let bufferSize = 1 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bufferSize)
        defer { buffer.deallocate() }
        var checksum = uLong(CHDF5.crc32(0, nil, 0))
        var total: Int64 = 0
        while true {
            let count = read(descriptor, buffer, bufferSize)
            if count < 0 { if errno == EINTR { continue }; return nil }
            if count == 0 { break }
            checksum = CHDF5.crc32(checksum, buffer, uInt(count))
            total += Int64(count)
        }
        self.init(size: total, crc32: UInt32(truncatingIfNeeded: checksum))
    }

    public init(size: Int64, crc32: UInt32) {
        self.size = size
        self.crc32 = crc32
    }

    public var description: String { "\(size) bytes, crc32 \(String(format: "%08x", crc32))" }
}
