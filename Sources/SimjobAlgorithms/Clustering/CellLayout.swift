import Dispatch
import Foundation
import SimjobKernels

/// Rows laid out cell by cell: cell `c` holds the consecutive positions
/// `starts[c] ..< starts[c + 1]`, and position `p` is the set's row `rows[p]`.
///
/// The approximate graph works in positions: a cell's members are one contiguous block (an
/// sgemm reads them in place, no gather), the rows of one cell are one work item that owns
/// their lists (no per-worker copies to merge), and neighbours, mostly in the same or nearby
/// cells, sit close in memory.
public final class CellLayout: @unchecked Sendable {
    /// Position -> row.
    public let rows: [Int32]
    /// Row -> position.
    public let positions: [Int32]
    /// Start of each cell, plus the end (`cells + 1` entries).
    public let starts: [Int]
    /// The vectors in position order.
    public let vectors: FloatMatrix
    /// Their squared norms.
    public let norms: [Float]

    /// Lays out `vectors` (one row per row of `cells`) by the partition's cells: into a copy,
    /// or with `inPlace` by reordering `vectors` itself (no second copy of the set; the caller
    /// must then read row `r` at `positions[r]`).
    public convenience init(_ vectors: FloatMatrix, cells: CellPartition, inPlace: Bool = false) {
        let (rows, positions, starts) = Self.order(cells, rows: vectors.rows)
        let laid = inPlace ? Self.permuteInPlace(vectors, rows: rows) : Self.permute(vectors, rows: rows)
        self.init(rows: rows, positions: positions, starts: starts, vectors: laid)
    }

    /// Lays out `vectors` into a spill file in `directory` (see `FloatMatrix`), for sets above
    /// the memory limit: `vectors` is read in row order and each row written to its position, so
    /// the source streams through the page cache and writes land in runs, one per cell touched
    /// by a block of rows (an in-place reordering would instead touch pages at random).
    public convenience init(_ vectors: FloatMatrix, cells: CellPartition, spillingTo directory: String, windowBytes: Int = defaultWindowBytes) throws {
        let (rows, positions, starts) = Self.order(cells, rows: vectors.rows)
        let laid = try Self.scatter(vectors, positions: positions, spillingTo: directory, windowBytes: windowBytes)
        self.init(rows: rows, positions: positions, starts: starts, vectors: laid)
    }

    private init(rows: [Int32], positions: [Int32], starts: [Int], vectors laid: FloatMatrix) {
        self.rows = rows
        self.positions = positions
        self.starts = starts
        self.vectors = laid
        let n = laid.rows
        var norms = [Float](repeating: 0, count: n)
        norms.withUnsafeMutableBufferPointer { VectorKernels.squaredNorms(laid.pointer, rows: n, dimension: laid.columns, into: $0.baseAddress!) }
        self.norms = norms
    }

    /// Position -> row, row -> position and the cells' starts of a partition.
    static func order(_ cells: CellPartition, rows n: Int) -> (rows: [Int32], positions: [Int32], starts: [Int]) {
        let rows = cells.members.flatMap { $0 }
        var positions = [Int32](repeating: 0, count: n)
        for (position, row) in rows.enumerated() { positions[Int(row)] = Int32(position) }
        var starts = [0]
        for members in cells.members { starts.append(starts.last! + members.count) }
        return (rows, positions, starts)
    }

    /// Bytes of the target a scatter fills per pass, by default and at least.
    public static let defaultWindowBytes = 256 << 20

    /// The window a spilled layout is filled by: what the memory limit leaves besides the
    /// run's `state`, at least `defaultWindowBytes`.
    public static func spillWindow(memoryLimit: ByteCount?, state: Int) -> Int {
        max(defaultWindowBytes, ProcessMemory.limit(memoryLimit) - state)
    }

    /// A copy of `vectors` in a spill file in `directory`, row `r` at `positions[r]`.
    ///
    /// The target is filled one window of `windowBytes` at a time: each pass reads `vectors` in
    /// row order (read-ahead serves it) and copies the rows whose positions fall in the window,
    /// blocks of rows in parallel (their targets are disjoint). Scattering the whole target at
    /// once wrote every page of it again and again; with less page cache than the file, pages
    /// were written back, dropped and read in again between two writes (a 3M-row layout in a
    /// 1.5 GiB cgroup took minutes). Its readers then go cell by cell in no particular order,
    /// so the copy is advised for random access (`FloatMatrix.adviseRandomAccess`).
    public static func scatter(_ vectors: FloatMatrix, positions: [Int32], spillingTo directory: String, windowBytes: Int = defaultWindowBytes) throws -> FloatMatrix {
        let n = vectors.rows, d = vectors.columns
        let laid = try FloatMatrix(rows: n, columns: d, spillingTo: directory)
        let window = max(1, windowBytes / max(4 * d, 1))
        let blocks = (n + 8191) / 8192
        positions.withUnsafeBufferPointer { buffer in
            let shared = UnsafeSendable(buffer.baseAddress!)
            for windowStart in stride(from: 0, to: n, by: window) {
                let windowEnd = min(n, windowStart + window)
                DispatchQueue.concurrentPerform(iterations: blocks) { block in
                    for row in (block * 8192)..<min((block + 1) * 8192, n) {
                        let position = Int(shared.value[row])
                        if position >= windowStart && position < windowEnd {
                            laid.row(position).update(from: vectors.row(row), count: d)
                        }
                    }
                }
            }
        }
        laid.adviseRandomAccess()
        return laid
    }

    /// Reorders `vectors` so that position `p` holds the old row `order[p]`, following the
    /// permutation's cycles with one spare row.
    static func permuteInPlace(_ vectors: FloatMatrix, rows order: [Int32]) -> FloatMatrix {
        let n = vectors.rows, d = vectors.columns
        var done = [Bool](repeating: false, count: n)
        let spare = UnsafeMutablePointer<Float>.allocate(capacity: max(d, 1))
        defer { spare.deallocate() }
        for start in 0..<n where !done[start] {
            done[start] = true
            guard Int(order[start]) != start else { continue }
            spare.update(from: vectors.row(start), count: d)
            var position = start
            while true {
                let source = Int(order[position])
                if source == start {
                    vectors.row(position).update(from: spare, count: d)
                    break
                }
                vectors.row(position).update(from: vectors.row(source), count: d)
                done[source] = true
                position = source
            }
        }
        return vectors
    }

    static func permute(_ vectors: FloatMatrix, rows order: [Int32]) -> FloatMatrix {
        let n = vectors.rows, d = vectors.columns
        let laid = FloatMatrix(rows: n, columns: d)
        let blocks = (n + 8191) / 8192
        DispatchQueue.concurrentPerform(iterations: blocks) { block in
            for position in (block * 8192)..<min((block + 1) * 8192, n) {
                laid.row(position).update(from: vectors.row(Int(order[position])), count: d)
            }
        }
        return laid
    }

    public var cellCount: Int { starts.count - 1 }

    public func cell(_ c: Int) -> Range<Int> { starts[c]..<starts[c + 1] }
}
