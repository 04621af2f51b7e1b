import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// Writing results into HDF5 files in the layouts of the interface (shared by every command).
public enum OutputWriting {
    /// Writes a neighbour table as `neighborsPath` int32 [rows, k] and `distancesPath`
    /// float32 [rows, k].
    public static func write(_ table: NeighborTable, to file: HDF5File, neighbors neighborsPath: String, distances distancesPath: String) throws {
        try file.createDataset(neighborsPath, type: .int32, shape: [table.rows, table.k])
            .writeRows(0, table.rows, from: table.ids)
        try file.createDataset(distancesPath, type: .float32, shape: [table.rows, table.k])
            .writeRows(0, table.rows, from: table.distances)
    }

    /// Writes `rows x dim` float32 rows produced block by block by `fill`, so the matrix never
    /// has to be in memory whole.
    public static func writeRows(
        _ name: String, rows: Int, dim: Int, to file: HDF5File, blockRows: Int = 16_384, progress: ProgressDisplay? = nil,
        fill: (_ range: Range<Int>, _ buffer: UnsafeMutablePointer<Float>) throws -> Void
    ) throws {
        let dataset = try file.createDataset(name, type: .float32, shape: [rows, dim])
        let buffer = FloatMatrix(rows: min(blockRows, max(rows, 1)), columns: dim)
        var start = 0
        while start < rows {
            try Cancellation.check()
            let range = start..<min(start + blockRows, rows)
            try fill(range, buffer.pointer)
            try dataset.writeRows(range.lowerBound, range.count, from: buffer.pointer)
            progress?.advance(by: range.count)
            start = range.upperBound
        }
    }

    /// Copies a dataset between files block by block, keeping its element type (float32,
    /// float64, int32, int64 or uint8/bool), and its attributes.
    public static func copyDataset(_ name: String, from source: HDF5File, to target: HDF5File, blockRows: Int = 16_384) throws {
        let input = try source.dataset(name)
        let shape = input.shape.isEmpty ? [0] : input.shape
        func copy<T: HDF5Scalar>(_ type: T.Type, storage: StorageType) throws {
            let output = try target.createDataset(name, type: storage, shape: shape)
            let buffer = UnsafeMutablePointer<T>.allocate(capacity: max(1, min(blockRows, input.rows) * input.columns))
            defer { buffer.deallocate() }
            var start = 0
            while start < input.rows {
                try Cancellation.check()
                let count = min(blockRows, input.rows - start)
                try input.readRows(start, count, into: buffer)
                try output.writeRows(start, count, from: buffer)
                start += count
            }
            for (key, value) in try input.attributes() { try output.setAttribute(key, value) }
        }
        switch input.elementType {
        case .float16, .float32: try copy(Float.self, storage: .float32)
        case .float64: try copy(Double.self, storage: .float64)
        case .int8, .int16, .int32, .uint16: try copy(Int32.self, storage: .int32)
        case .int64, .uint32, .uint64: try copy(Int64.self, storage: .int64)
        case .uint8, .bool: try copy(UInt8.self, storage: .uint8)
        default: throw SimjobError("\(input.location): cannot copy \(input.elementType) elements")
        }
    }

    /// Whether a run estimated at `plan` (its vectors, and the state that stays in memory)
    /// spills its vectors to disk under `limit` (nil: half of RAM): their sum is above it.
    /// Throws `refusal(plan, limit)` when the state alone is above it.
    static func spills(_ plan: (vectors: Int, state: Int), limit: ByteCount?, refusal: ((vectors: Int, state: Int), Int) -> String) throws -> Bool {
        let bytes = ProcessMemory.limit(limit)
        if plan.state > bytes { throw SimjobError(refusal(plan, bytes)) }
        return plan.vectors + plan.state > bytes
    }
}
