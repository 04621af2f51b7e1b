import CHDF5
import Dispatch
import Foundation

/// Reads float32 rows of a chunked, deflate-compressed dataset on several threads.
///
/// HDF5 (the serial build) decompresses on the calling thread, at about 300 MB/s here: reading
/// a million 128-d vectors took longer than clustering them. For the common layout, row-chunked
/// float32 (little-endian) with the filter pipelines `deflate` or `shuffle, deflate`, this reads
/// each chunk's raw bytes through HDF5 (`H5Dread_chunk`, on the calling thread) and inflates
/// and un-shuffles the chunks in parallel. Every other layout returns nil from `init` and is
/// read through `H5Dread`.
struct ParallelChunkReader {
    let rowsPerChunk: Int
    let columns: Int
    let shuffled: Bool
    let deflated: Bool
    let dataset: HDF5Dataset

    init?(_ dataset: HDF5Dataset) {
        guard dataset.isLittleEndianFloat32Matrix, let chunks = dataset.rowChunks else { return nil }
        let deflate = sj_H5Z_FILTER_DEFLATE(), shuffle = sj_H5Z_FILTER_SHUFFLE()
        switch chunks.filters.map(\.id) {
        case [deflate]: (shuffled, deflated) = (false, true)
        case [shuffle, deflate]: (shuffled, deflated) = (true, true)
        default: return nil  // unfiltered data reads at memory speed through H5Dread anyway
        }
        rowsPerChunk = chunks.rows
        columns = dataset.columns
        self.dataset = dataset
    }

    /// Reads rows `start ..< start + count` into `buffer`; false when a chunk could not be
    /// decoded here (the caller then falls back to `H5Dread`).
    ///
    /// Chunks go in batches of `2 x threads`; the batch's buffers (compressed bytes, staging
    /// for un-shuffling, and a whole chunk for the partial chunks at either end) are allocated
    /// once per call and reused, and chunks inside the range decode straight into `buffer`, so
    /// reading costs a few MiB beyond the rows themselves.
    func read(_ start: Int, _ count: Int, into buffer: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        let chunkBytes = rowsPerChunk * columns * 4
        let firstChunk = start / rowsPerChunk
        let lastChunk = (start + count - 1) / rowsPerChunk
        let batch = max(threads * 2, 2)
        let slots = Slots(count: batch, chunkBytes: chunkBytes, shuffled: shuffled)
        var chunkIndex = firstChunk
        while chunkIndex <= lastChunk {
            let batchChunks = Array(chunkIndex...min(lastChunk, chunkIndex + batch - 1))
            // Raw (compressed) bytes, read one after another: HDF5 calls stay on this thread.
            var sizes: [Int] = []
            var masks: [UInt32] = []
            for (slot, chunk) in batchChunks.enumerated() {
                var offset: [hsize_t] = [hsize_t(chunk * rowsPerChunk), 0]
                var size: hsize_t = 0
                guard H5Dget_chunk_storage_size(dataset.id, &offset, &size) >= 0, size > 0 else { return false }
                slots.reserveRaw(slot, bytes: Int(size))
                var mask: UInt32 = 0
                guard H5Dread_chunk(dataset.id, sj_H5P_DATASET_XFER_DEFAULT(), &offset, &mask, slots.raw[slot]) >= 0 else { return false }
                sizes.append(Int(size))
                masks.append(mask)
            }
            let failed = UnsafeMutablePointer<Bool>.allocate(capacity: batchChunks.count)
            failed.initialize(repeating: false, count: batchChunks.count)
            defer { failed.deallocate() }
            let shared = UnsafeSendableBox((buffer, failed, slots, sizes, masks))
            DispatchQueue.concurrentPerform(iterations: batchChunks.count) { slot in
                let (buffer, failed, slots, sizes, masks) = shared.value
                let chunk = batchChunks[slot]
                let chunkStart = chunk * rowsPerChunk
                let first = max(start, chunkStart), last = min(start + count, chunkStart + rowsPerChunk)
                // A chunk wholly inside the range decodes in place; an end chunk goes through
                // the slot's whole-chunk buffer and only its rows in range are copied.
                let whole = first == chunkStart && last == chunkStart + rowsPerChunk
                let target = whole ? UnsafeMutableRawPointer(buffer + (first - start) * columns) : slots.chunk[slot]
                // Filter i was skipped for this chunk when bit i of the mask is set.
                let inflate = deflated && masks[slot] & (shuffled ? 2 : 1) == 0
                let unshuffle = shuffled && masks[slot] & 1 == 0
                let inflated = unshuffle ? slots.staging[slot]! : target
                if inflate {
                    var length = uLongf(chunkBytes)
                    let result = uncompress(inflated.assumingMemoryBound(to: Bytef.self), &length,
                                            slots.raw[slot].assumingMemoryBound(to: Bytef.self), uLong(sizes[slot]))
                    guard result == Z_OK, Int(length) == chunkBytes else { failed[slot] = true; return }
                } else {
                    guard sizes[slot] == chunkBytes else { failed[slot] = true; return }
                    inflated.copyMemory(from: slots.raw[slot], byteCount: chunkBytes)
                }
                if unshuffle {
                    // Shuffle stored byte 0 of every element, then byte 1, ...: interleave back.
                    let elements = chunkBytes / 4
                    let from = inflated.assumingMemoryBound(to: UInt8.self)
                    let to = target.assumingMemoryBound(to: UInt8.self)
                    for element in 0..<elements {
                        to[element * 4] = from[element]
                        to[element * 4 + 1] = from[elements + element]
                        to[element * 4 + 2] = from[2 * elements + element]
                        to[element * 4 + 3] = from[3 * elements + element]
                    }
                }
                if !whole, last > first {
                    (buffer + (first - start) * columns).update(
                        from: target.assumingMemoryBound(to: Float.self) + (first - chunkStart) * columns,
                        count: (last - first) * columns)
                }
            }
            if (0..<batchChunks.count).contains(where: { failed[$0] }) { return false }
            chunkIndex += batchChunks.count
        }
        return true
    }

    /// Per-slot buffers of one read: compressed bytes (grown as needed), un-shuffle staging and
    /// a whole decoded chunk.
    final class Slots: @unchecked Sendable {
        var raw: [UnsafeMutableRawPointer]
        var rawCapacity: [Int]
        let staging: [UnsafeMutableRawPointer?]
        let chunk: [UnsafeMutableRawPointer]

        init(count: Int, chunkBytes: Int, shuffled: Bool) {
            raw = (0..<count).map { _ in UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64) }
            rawCapacity = [Int](repeating: chunkBytes, count: count)
            staging = (0..<count).map { _ in shuffled ? UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64) : nil }
            chunk = (0..<count).map { _ in UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64) }
        }

        /// Room for `bytes` compressed bytes in slot `slot` (a chunk that did not compress can
        /// be slightly larger than its data).
        func reserveRaw(_ slot: Int, bytes: Int) {
            guard bytes > rawCapacity[slot] else { return }
            raw[slot].deallocate()
            raw[slot] = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            rawCapacity[slot] = bytes
        }

        deinit {
            raw.forEach { $0.deallocate() }
            staging.forEach { $0?.deallocate() }
            chunk.forEach { $0.deallocate() }
        }
    }
}

/// Carries values into Dispatch's `@Sendable` closures where the code guarantees that the
/// threads touch disjoint parts.
struct UnsafeSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
