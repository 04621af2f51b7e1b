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

    /// Lays out `vectors` (one row per row of `cells`) by the partition's cells.
    public init(_ vectors: FloatMatrix, cells: CellPartition) {
        let n = vectors.rows, d = vectors.columns
        rows = cells.members.flatMap { $0 }
        var positions = [Int32](repeating: 0, count: n)
        for (position, row) in rows.enumerated() { positions[Int(row)] = Int32(position) }
        self.positions = positions
        var starts = [0]
        for members in cells.members { starts.append(starts.last! + members.count) }
        self.starts = starts
        let laid = Self.permute(vectors, rows: rows)
        self.vectors = laid
        var norms = [Float](repeating: 0, count: n)
        norms.withUnsafeMutableBufferPointer { VectorKernels.squaredNorms(laid.pointer, rows: n, dimension: d, into: $0.baseAddress!) }
        self.norms = norms
    }

    /// `vectors` (one row per row of the set, any dimension) in position order.
    public func permuted(_ vectors: FloatMatrix) -> FloatMatrix { Self.permute(vectors, rows: rows) }

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
