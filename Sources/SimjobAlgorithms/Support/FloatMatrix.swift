import CMemoryHints
import Foundation
import SimjobCore

/// An owned, row-major `rows x columns` matrix of Float, 64-byte aligned for SIMD and BLAS.
///
/// Matrices of 32 MiB and more are 2 MiB aligned but not marked for transparent huge pages: on
/// an AMD EPYC machine `MADV_HUGEPAGE` made faulting in a freshly read set faster, but on an
/// Intel Xeon (family 6, model 207) virtual machine it made reading Fashion-MNIST's 188 MB
/// 4.7x slower (0.85 s against 0.18 s, the kernel clearing and compacting huge pages), and
/// the loss there outweighs the gain elsewhere.
public final class FloatMatrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// Bytes mapped from a file (a spill file, or a set's own file: `init?(mapping:...)`), 0 for
    /// memory.
    public let mappedBytes: Int
    /// Start of the mapping (the page `pointer` lies in), nil for memory.
    private let mappedBase: UnsafeMutableRawPointer?

    /// A matrix in a spill file in `directory` rather than in memory: the file is created,
    /// unlinked at once (nothing is left behind, even if the process is killed) and its blocks
    /// reserved with `posix_fallocate` (a full disk is an error here, never a SIGBUS later),
    /// then mapped shared. The kernel writes its pages back and drops them under memory
    /// pressure, so the process's own (anonymous) memory does not grow with it.
    public init(rows: Int, columns: Int, spillingTo directory: String) throws {
        self.rows = rows
        self.columns = columns
        let bytes = max(rows * columns, 1) * 4
        var template = Array((directory + "/.simjob-spill-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw SimjobError("\(directory): cannot create a spill file (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        let reserved = posix_fallocate(descriptor, 0, off_t(bytes))
        guard reserved == 0 else {
            throw SimjobError("\(directory): no room for a spill file of \(formatBytes(bytes)) (\(String(cString: strerror(reserved))))")
        }
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            throw SimjobError("\(directory): cannot map a spill file of \(formatBytes(bytes)) (\(String(cString: strerror(errno))))")
        }
        mappedBytes = bytes
        mappedBase = mapped
        pointer = mapped.bindMemory(to: Float.self, capacity: max(rows * columns, 1))
    }

    /// The `rows x columns` little-endian float32 values stored contiguously at byte `offset`
    /// of the file at `path`, mapped privately (copy on write) and populated at once, instead of
    /// copied into fresh memory: the pages are the page cache's own, so nothing is zeroed,
    /// faulted in page by page or copied (Fashion-MNIST's 188 MB from the page cache: about
    /// 0.02 s against 0.08-0.10 s for reads into new memory on two threads). Writes (angular
    /// normalisation, an in-place reordering) copy the pages they touch and never reach the
    /// file. nil when the file cannot be opened or mapped, or is shorter than the rows: the
    /// caller reads it instead.
    ///
    /// A file truncated under the mapping would raise SIGBUS at the next access to a lost
    /// page; the guard (`simjob_guard_register`, which finds the mapping by the faulting address)
    /// turns that into a one-line error naming `name` that removes temporary outputs, instead of
    /// a crash.
    public init?(mapping path: String, offset: Int, rows: Int, columns: Int, name: String) {
        let bytes = rows * columns * 4
        guard bytes > 0, offset >= 0 else { return nil }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) >= offset + bytes else { return nil }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let length = offset - start + bytes
        // Populated read-only, then made writable: populating a writable private mapping would
        // copy every page at once (as many faults as a read into new memory, and slower).
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, descriptor, off_t(start)),
              mapped != MAP_FAILED else { return nil }
        guard mprotect(mapped, length, PROT_READ | PROT_WRITE) == 0 else {
            munmap(mapped, length)
            return nil
        }
        let message = "error: \(name): the file was truncated or rewritten by another program while simjob was using it; temporary outputs removed\n"
        _ = simjob_guard_register(mapped, UInt(length), message, Cancellation.removeTemporaryFiles)
        self.rows = rows
        self.columns = columns
        mappedBytes = length
        mappedBase = mapped
        pointer = (mapped + (offset - start)).bindMemory(to: Float.self, capacity: rows * columns)
    }

    /// For a spilled matrix read row by row in no particular order: the kernel then faults in
    /// only the page touched, not the read-ahead window around it (with a page cache smaller
    /// than the file, read-ahead evicts pages that are still in use). No effect in memory.
    public func adviseRandomAccess() {
        if let mappedBase { _ = madvise(mappedBase, mappedBytes, MADV_RANDOM) }
    }

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        mappedBytes = 0
        mappedBase = nil
        let bytes = max(rows * columns, 1) * 4
        let hugePage = 2 << 20 // alignment only
        let raw: UnsafeMutableRawPointer
        if bytes >= 32 << 20 {
            var memory: UnsafeMutableRawPointer?
            let rounded = (bytes + hugePage - 1) / hugePage * hugePage
            guard posix_memalign(&memory, hugePage, rounded) == 0, let memory else { fatalError("out of memory allocating \(bytes) bytes") }
            raw = memory
        } else {
            raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(rows * columns, 1))
    }

    public convenience init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "values do not match the shape")
        self.init(rows: rows, columns: columns)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        if let mappedBase {
            simjob_guard_unregister(mappedBase)
            munmap(mappedBase, mappedBytes)
        } else {
            free(pointer)
        }
    }

    public func row(_ index: Int) -> UnsafeMutablePointer<Float> { pointer + index * columns }

    public var byteCount: Int { rows * columns * 4 }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: rows * columns)) }
}
