import CHDF5
import Dispatch
import Foundation

/// Writes a whole new dataset of shuffled, deflate-compressed chunks (the layout
/// `HDF5File.createDataset` makes) with the compression on several threads: each chunk is
/// padded to its full size (as HDF5 stores edge chunks), byte-shuffled and deflated here as
/// HDF5's own filters would, then handed to HDF5 as it is (`H5Dwrite_chunk`), in order.
/// One `H5Dwrite` compresses chunk after chunk on one thread (a k-NN graph of 60,000 rows:
/// about 0.05 s of zlib).
///
/// `write` returns false without writing anything when it cannot take the data (a layout it
/// does not recognise); the caller then writes through HDF5.
struct ParallelChunkWriter {
    let dataset: HDF5Dataset
    let rowsPerChunk: Int
    let rowElements: Int
    let elementSize: Int
    let level: Int32

    init?(_ dataset: HDF5Dataset, elementSize: Int) {
        guard H5Tget_size(dataset.fileType) == elementSize,
              H5Tget_order(dataset.fileType) == H5T_ORDER_LE || elementSize == 1, let chunks = dataset.rowChunks else { return nil }
        // Exactly createDataset's pipeline: shuffle, then deflate at its level.
        guard chunks.filters.map(\.id) == [sj_H5Z_FILTER_SHUFFLE(), sj_H5Z_FILTER_DEFLATE()], let deflateLevel = chunks.filters[1].values.first
        else { return nil }
        level = Int32(deflateLevel)
        rowElements = dataset.columns
        rowsPerChunk = chunks.rows
        self.dataset = dataset
        self.elementSize = elementSize
    }

    /// All `dataset.rows` rows from `buffer` (native little-endian elements of `elementSize`).
    func write(_ buffer: UnsafeRawPointer, threads: Int) throws -> Bool {
        let rows = dataset.rows
        guard rows > 0 else { return true }
        let chunkBytes = rowsPerChunk * rowElements * elementSize
        let chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
        let batch = max(2 * threads, 2)
        let bound = Int(compressBound(uLong(chunkBytes)))
        let padded = (0..<batch).map { _ in UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64) }
        let shuffled = (0..<batch).map { _ in UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64) }
        let compressed = (0..<batch).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bound, alignment: 64) }
        let sizes = UnsafeMutablePointer<Int>.allocate(capacity: batch)
        defer {
            (padded + shuffled + compressed).forEach { $0.deallocate() }
            sizes.deallocate()
        }
        let rowBytes = rowElements * elementSize, elementSize = elementSize, rowsPerChunk = rowsPerChunk, level = level
        let shared = UnsafeSendableBox((buffer, padded, shuffled, compressed, sizes))
        var first = 0
        while first < chunks {
            let count = min(batch, chunks - first)
            let start = first
            DispatchQueue.concurrentPerform(iterations: count) { slot in
                let (buffer, padded, shuffled, compressed, sizes) = shared.value
                let chunk = start + slot
                let firstRow = chunk * rowsPerChunk, chunkRows = min(rowsPerChunk, rows - firstRow)
                let source = buffer + firstRow * rowBytes
                let target = padded[slot]
                target.copyMemory(from: source, byteCount: chunkRows * rowBytes)
                if chunkRows < rowsPerChunk { (target + chunkRows * rowBytes).initializeMemory(as: UInt8.self, repeating: 0, count: chunkBytes - chunkRows * rowBytes) }
                // Shuffle: byte 0 of every element, then byte 1, ... (HDF5's H5Z_FILTER_SHUFFLE).
                let elements = chunkBytes / elementSize
                let from = UnsafeRawPointer(target).assumingMemoryBound(to: UInt8.self)
                let to = shuffled[slot].assumingMemoryBound(to: UInt8.self)
                for byte in 0..<elementSize {
                    let plane = to + byte * elements
                    for element in 0..<elements { plane[element] = from[element * elementSize + byte] }
                }
                var length = uLongf(bound)
                let result = compress2(compressed[slot].assumingMemoryBound(to: Bytef.self), &length,
                                       UnsafeRawPointer(to).assumingMemoryBound(to: Bytef.self), uLong(chunkBytes), level)
                sizes[slot] = result == Z_OK ? Int(length) : -1
            }
            for slot in 0..<count {
                guard sizes[slot] >= 0 else { throw SimjobError("\(dataset.location): cannot compress chunk \(first + slot) (zlib error)") }
                var offset = [hsize_t(UInt64((first + slot) * rowsPerChunk))]
                if dataset.shape.count == 2 { offset.append(0) }
                guard H5Dwrite_chunk(dataset.id, sj_H5P_DEFAULT(), 0, &offset, sizes[slot], compressed[slot]) >= 0 else {
                    let code = errno
                    throw SimjobError("\(dataset.location): cannot write chunk \(first + slot): \(HDF5Diagnosis.cause(fallbackErrno: code) ?? "I/O error")")
                }
            }
            first += count
        }
        return true
    }
}
