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
    /// Bytes mapped from a spill file (`init(rows:columns:spillingTo:)`), 0 for memory.
    public let mappedBytes: Int

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
        pointer = mapped.bindMemory(to: Float.self, capacity: max(rows * columns, 1))
    }

    /// For a spilled matrix read row by row in no particular order: the kernel then faults in
    /// only the page touched, not the read-ahead window around it (with a page cache smaller
    /// than the file, read-ahead evicts pages that are still in use). No effect in memory.
    public func adviseRandomAccess() {
        if mappedBytes > 0 { _ = madvise(pointer, mappedBytes, MADV_RANDOM) }
    }

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        mappedBytes = 0
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
        if mappedBytes > 0 { munmap(pointer, mappedBytes) } else { free(pointer) }
    }

    public func row(_ index: Int) -> UnsafeMutablePointer<Float> { pointer + index * columns }

    public var byteCount: Int { rows * columns * 4 }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: rows * columns)) }
}
