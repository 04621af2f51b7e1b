import Foundation
import Logging
import SimjobBLAS
import SimjobCore
import SimjobKernels

/// Multi-table locality-sensitive hashing with query-directed multi-probe and exact re-ranking.
///
/// Each of `tables` tables hashes a vector to a `bits`-bit code: bit `j` is whether its
/// projection on a random direction `p_j` lies above the bit's threshold. The directions are
/// Gaussian, orthonormalised in groups of up to `d` (a random rotation, as FAISS's `IndexLSH`
/// with `rotate_data`: orthogonal directions make bits that repeat each other less), and the
/// thresholds are the medians of the projections over a sample (its `train_thresholds`), for
/// every metric: each bit splits the set in half. Hyperplanes through the origin (SimHash,
/// Charikar 2002) would suit angular data centred at 0, but real embeddings share a mean
/// direction, on which most such bits come out alike (MiniLM, Hamming ranking, refine 10:
/// recall 0.64 with them against 0.75 with medians and orthonormal directions). All projections
/// of a block of rows are one sgemm.
///
/// A table is its rows sorted by code: a bucket is a run of rows with one code. A query probes,
/// in every table, its own bucket and then the buckets whose codes differ in the bits it was
/// least sure of, in the order of Lv et al., "Multi-Probe LSH" (VLDB 2007): perturbation sets
/// by increasing sum of the squared margins of the flipped bits. The rows found (each once) are
/// scored exactly from the stored vectors and the best `k` kept. `probes` (buckets per table)
/// is the search-time dial between speed and recall.
///
/// With `refine` R > 0 the search is instead FAISS's `IndexLSH` under `IndexRefineFlat`: the
/// tables' codes side by side are one code of `tables x bits` bits, every stored code is ranked
/// by its Hamming distance to the query's (xor and popcount over 64-bit words), and the R x k
/// nearest by that distance (ties by smaller id) are scored exactly.
public final class LSHIndex: SearchableIndex, @unchecked Sendable {
    public let metric: Metric
    public let dimension: Int
    public let tables: Int
    public let bits: Int
    /// `(tables * bits) x d`: table `t`'s directions are rows `t * bits ..< (t + 1) * bits`.
    public let projections: FloatMatrix
    /// Per direction, the threshold its bit compares with.
    public let thresholds: [Float]
    /// Row `i`'s code in table `t` at `codes[t * count + i]`.
    public let codes: [UInt32]
    /// `count x d`, by row id (unit length for angular).
    public let vectors: FloatMatrix
    public let source: String
    /// Per table: its distinct codes ascending, where each code's rows start in `members` (one
    /// more entry than codes), and the rows in code order (`count` per table).
    let bucketCodes: [[UInt32]]
    let bucketStarts: [[Int32]]
    let members: [[Int32]]
    /// Every row's codes side by side, `words` 64-bit words per row (bit `t * bits + j` is bit
    /// `j` of its code in table `t`), for the Hamming ranking.
    let packed: [UInt64]
    let words: Int

    public var count: Int { vectors.rows }
    public var nlist: Int { 0 }
    /// Vectors, codes and projections, plus what loading derives from them: the rows in
    /// bucket order, the buckets' codes and starts, and the packed codes.
    public var sizeInBytes: Int {
        vectors.byteCount + codes.count * 4 + projections.byteCount + tables * count * 4 + bucketCodes.reduce(0) { $0 + $1.count * 8 } + packed.count * 8
    }
    public var summary: String { "LSH tables=\(tables) bits=\(bits)" }
    public var algorithm: String { "simjob-lsh" }
    public func settingName(refine: Int) -> String { "LSH(tables=\(tables),bits=\(bits))" }

    /// Bits of a table's code, at most.
    public static let maximumBits = 31

    public init(metric: Metric, tables: Int, bits: Int, projections: FloatMatrix, thresholds: [Float], codes: [UInt32], vectors: FloatMatrix, source: String) {
        precondition(projections.rows == tables * bits && thresholds.count == tables * bits && codes.count == tables * vectors.rows)
        self.metric = metric
        self.dimension = vectors.columns
        self.tables = tables
        self.bits = bits
        self.projections = projections
        self.thresholds = thresholds
        self.codes = codes
        self.vectors = vectors
        self.source = source
        let n = vectors.rows
        var bucketCodes = [[UInt32]](repeating: [], count: tables)
        var bucketStarts = [[Int32]](repeating: [], count: tables)
        var members = [[Int32]](repeating: [], count: tables)
        // Tables sort independently: one work item each.
        let results = UnsafeMutablePointer<([UInt32], [Int32], [Int32])>.allocate(capacity: max(tables, 1))
        results.initialize(repeating: ([], [], []), count: max(tables, 1))
        defer { results.deinitialize(count: max(tables, 1)); results.deallocate() }
        let shared = UnsafeSendable((results, codes))
        DispatchQueue.concurrentPerform(iterations: tables) { table in
            let (results, codes) = shared.value
            var distinct: [UInt32] = [], starts: [Int32] = [], order = [Int32](repeating: 0, count: n)
            if bits <= 20 {
                // A counting sort by code (rows ascending within a code).
                var counts = [Int32](repeating: 0, count: 1 << bits)
                for row in 0..<n { counts[Int(codes[table * n + row])] += 1 }
                var next = [Int32](repeating: 0, count: 1 << bits)
                var running: Int32 = 0
                for code in 0..<(1 << bits) {
                    next[code] = running
                    if counts[code] > 0 {
                        distinct.append(UInt32(code))
                        starts.append(running)
                    }
                    running += counts[code]
                }
                for row in 0..<n {
                    let code = Int(codes[table * n + row])
                    order[Int(next[code])] = Int32(row)
                    next[code] += 1
                }
            } else {
                var keys = [UInt64](repeating: 0, count: n)
                for row in 0..<n { keys[row] = UInt64(codes[table * n + row]) << 32 | UInt64(row) }
                keys.sort()
                for (position, key) in keys.enumerated() {
                    let code = UInt32(truncatingIfNeeded: key >> 32)
                    if distinct.last != code {
                        distinct.append(code)
                        starts.append(Int32(position))
                    }
                    order[position] = Int32(truncatingIfNeeded: key & 0xFFFF_FFFF)
                }
            }
            starts.append(Int32(n))
            results[table] = (distinct, starts, order)
        }
        for table in 0..<tables { (bucketCodes[table], bucketStarts[table], members[table]) = results[table] }
        self.bucketCodes = bucketCodes
        self.bucketStarts = bucketStarts
        self.members = members
        let words = (tables * bits + 63) / 64
        var packed = [UInt64](repeating: 0, count: n * words)
        for table in 0..<tables {
            let shift = table * bits
            for row in 0..<n {
                let code = UInt64(codes[table * n + row])
                packed[row * words + shift / 64] |= code << UInt64(shift % 64)
                if shift % 64 + bits > 64 { packed[row * words + shift / 64 + 1] |= code >> UInt64(64 - shift % 64) }
            }
        }
        self.packed = packed
        self.words = words
    }

    /// Bits per table when none are given: about log2(rows / 32) (buckets of a few dozen rows
    /// if codes spread evenly), within 4...20.
    public static func automaticBits(rows: Int) -> Int {
        min(20, max(4, Int((log2(Double(max(rows, 1)) / 32)).rounded())))
    }

    /// Hashes `source` (read whole, normalised for angular) into `config.tables` tables.
    public static func train(
        _ source: RowSource, metric: Metric, config: IVFPQConfig, logger: Logger? = nil
    ) throws -> (LSHIndex, IVFPQTrainStats) {
        let started = ProgressDisplay.now()
        let n = source.rows, d = source.dimension
        let tables = config.tables
        let bits = config.hashBits > 0 ? config.hashBits : automaticBits(rows: n)
        guard (1...1024).contains(tables) else { throw SimjobError("lsh: tables = \(tables) must be between 1 and 1024") }
        guard (1...maximumBits).contains(bits) else { throw SimjobError("lsh: hash_bits = \(bits) must be between 1 and \(maximumBits)") }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        var stats = IVFPQTrainStats()
        stats.vectors = n
        let readStarted = ProgressDisplay.now()
        let vectors = try source.readMatrix(0..<n, metric: metric)
        stats.readSeconds = ProgressDisplay.now() - readStarted
        let hashing = ProgressDisplay.now()
        let directions = tables * bits
        let projections = FloatMatrix(rows: directions, columns: d)
        var rng = SeededGenerator(seed: config.seed, stream: 0x15A)
        rng.fillGaussian(projections.pointer, count: directions * d)
        orthonormalise(projections, groupSize: d)
        // Thresholds: the median projection per direction over a sample.
        var thresholds = [Float](repeating: 0, count: directions)
        do {
            let chosen = sampleIndices(min(n, 16_384), from: n, seed: config.seed &+ 0x7E5)
            let sample = FloatMatrix(rows: chosen.count, columns: d)
            for (slot, row) in chosen.enumerated() { sample.row(slot).update(from: vectors.row(row), count: d) }
            let projected = FloatMatrix(rows: chosen.count, columns: directions)
            try project(sample, projections, into: projected, threads: threads)
            // Each direction's median by selection, the directions split across threads.
            let rows = chosen.count, parts = min(threads, directions)
            thresholds.withUnsafeMutableBufferPointer { buffer in
                let medians = UnsafeSendable(buffer.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    var column = [Float](repeating: 0, count: rows)
                    for direction in stride(from: part, to: directions, by: parts) {
                        for slot in 0..<rows { column[slot] = projected.row(slot)[direction] }
                        medians.value[direction] = column.withUnsafeMutableBufferPointer { Self.select($0, rank: rows / 2) }
                    }
                }
            }
        }
        let codes = try hash(vectors, projections: projections, thresholds: thresholds, tables: tables, bits: bits, threads: threads)
        let index = LSHIndex(metric: metric, tables: tables, bits: bits, projections: projections, thresholds: thresholds,
                             codes: codes, vectors: vectors, source: source.name)
        stats.encodeSeconds = ProgressDisplay.now() - hashing
        stats.totalSeconds = ProgressDisplay.now() - started
        let largest = index.bucketStarts.map { starts in zip(starts.dropFirst(), starts).map { Int($0 - $1) }.max() ?? 0 }.max() ?? 0
        let buckets = index.bucketCodes.reduce(0) { $0 + $1.count }
        logger?.info("lsh: \(tables) tables of \(bits) bits over \(n) rows: \(buckets / max(tables, 1)) buckets per table on average, largest \(largest) rows")
        return (index, stats)
    }

    /// Makes each group of `groupSize` consecutive rows of `matrix` orthonormal (modified
    /// Gram-Schmidt in double precision).
    static func orthonormalise(_ matrix: FloatMatrix, groupSize: Int) {
        let d = matrix.columns
        var start = 0
        while start < matrix.rows {
            let end = min(start + groupSize, matrix.rows)
            var rows = (start..<end).map { row in (0..<d).map { Double(matrix.row(row)[$0]) } }
            for i in 0..<rows.count {
                for j in 0..<i {
                    var dot = 0.0
                    for c in 0..<d { dot += rows[i][c] * rows[j][c] }
                    for c in 0..<d { rows[i][c] -= dot * rows[j][c] }
                }
                var norm = 0.0
                for c in 0..<d { norm += rows[i][c] * rows[i][c] }
                let scale = norm > 0 ? 1 / norm.squareRoot() : 0
                for c in 0..<d { rows[i][c] *= scale }
            }
            for (offset, values) in rows.enumerated() {
                for c in 0..<d { matrix.row(start + offset)[c] = Float(values[c]) }
            }
            start = end
        }
    }

    /// The value of 0-based rank `rank` among `values` (reordered).
    static func select(_ values: UnsafeMutableBufferPointer<Float>, rank: Int) -> Float {
        VectorKernels.select(values.baseAddress!, count: values.count, rank: rank)
        return values[rank]
    }

    /// `rows x directions` projections of `vectors` on `projections`, by blocks in parallel.
    static func project(_ vectors: FloatMatrix, _ projections: FloatMatrix, into output: FloatMatrix, threads: Int) throws {
        let n = vectors.rows, d = vectors.columns, directions = projections.rows
        let block = 2048
        try BlockedJoin.run(items: (n + block - 1) / block, threads: threads, block: 1) { item, _ in
            let start = item * block, rows = min(block, n - start)
            BLAS.gemmABt(m: rows, n: directions, k: d, a: vectors.row(start), lda: d, b: projections.pointer, ldb: d,
                         c: output.row(start), ldc: directions)
        }
    }

    /// Every row's code in every table (table-major).
    static func hash(_ vectors: FloatMatrix, projections: FloatMatrix, thresholds: [Float], tables: Int, bits: Int, threads: Int) throws -> [UInt32] {
        let n = vectors.rows, d = vectors.columns, directions = tables * bits
        var codes = [UInt32](repeating: 0, count: tables * n)
        let block = 2048
        let blocks = (n + block - 1) / block
        let scratch = (0..<min(threads, max(blocks, 1))).map { _ in FloatMatrix(rows: block, columns: directions) }
        try codes.withUnsafeMutableBufferPointer { codeBuffer in
            try thresholds.withUnsafeBufferPointer { thresholdBuffer in
                let shared = UnsafeSendable((codeBuffer.baseAddress!, thresholdBuffer.baseAddress!))
                try BlockedJoin.run(items: blocks, threads: threads, block: 1) { item, worker in
                    let (codes, thresholds) = shared.value
                    let start = item * block, rows = min(block, n - start)
                    let projected = scratch[worker.index]
                    BLAS.gemmABt(m: rows, n: directions, k: d, a: vectors.row(start), lda: d, b: projections.pointer, ldb: d,
                                 c: projected.pointer, ldc: directions)
                    for local in 0..<rows {
                        let values = projected.row(local)
                        for table in 0..<tables {
                            var code: UInt32 = 0
                            for bit in 0..<bits where values[table * bits + bit] > thresholds[table * bits + bit] { code |= 1 << UInt32(bit) }
                            codes[table * n + start + local] = code
                        }
                    }
                }
            }
        }
        return codes
    }

    /// The `k` nearest stored vectors of each query among the rows of the `probes` buckets it
    /// probes in every table (`config.probes`, default 1: its own bucket), scored exactly.
    /// `nprobe`, `refine` and `base` do not apply.
    public func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base: FloatMatrix? = nil) throws -> (NeighborTable, IVFPQIndex.SearchStats) {
        let started = ProgressDisplay.now()
        let prepared = try preparedQueries(queries, k: config.k)
        guard config.refine >= 0 else { throw SimjobError("refine must not be negative") }
        if config.refine > 0 { return try hammingSearch(prepared, config: config, started: started) }
        let probes = config.probes ?? 1
        guard probes >= 1 else { throw SimjobError("probes must be at least 1 (got \(probes))") }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let q = queries.rows, d = dimension, n = count, directions = tables * bits
        let result = NeighborLists(rows: q, k: config.k)
        let blockSize = 64
        let blocks = (q + blockSize - 1) / blockSize
        let workers = min(threads, max(blocks, 1))
        var scanned = [Int](repeating: 0, count: workers)
        // Per worker: the block's projections, and a stamp per stored row (the query that last
        // scored it), so a row found in several tables or probes is scored once.
        let projected = (0..<workers).map { _ in FloatMatrix(rows: blockSize, columns: directions) }
        let stamps = UnsafeMutablePointer<Int32>.allocate(capacity: workers * n)
        stamps.initialize(repeating: -1, count: workers * n)
        defer { stamps.deallocate() }
        let metric = metric, tables = tables, bits = bits
        try scanned.withUnsafeMutableBufferPointer { scannedBuffer in
            let shared = UnsafeSendable(scannedBuffer.baseAddress!)
            try BlockedJoin.run(items: blocks, threads: workers, block: 1) { block, worker in
                let first = block * blockSize, rows = min(blockSize, q - first)
                let values = projected[worker.index]
                BLAS.gemmABt(m: rows, n: directions, k: d, a: prepared.row(first), lda: d, b: projections.pointer, ldb: d,
                             c: values.pointer, ldc: directions)
                let seen = stamps + worker.index * n
                var probeCodes = [UInt32](repeating: 0, count: probes)
                var planner = ProbePlanner(bits: bits, capacity: probes)
                var scored = 0
                var found: [Int32] = []
                for local in 0..<rows {
                    let query = first + local
                    let x = prepared.row(query)
                    let tag = Int32(truncatingIfNeeded: query)
                    found.removeAll(keepingCapacity: true)
                    for table in 0..<tables {
                        let margins = values.row(local) + table * bits
                        let made = planner.plan(margins: margins, thresholds: thresholds, offset: table * bits, count: probes, into: &probeCodes)
                        let codes = bucketCodes[table], starts = bucketStarts[table], order = members[table]
                        for probe in 0..<made {
                            guard let bucket = Self.find(probeCodes[probe], in: codes) else { continue }
                            for slot in Int(starts[bucket])..<Int(starts[bucket + 1]) {
                                let id = order[slot]
                                if seen[Int(id)] == tag { continue }
                                seen[Int(id)] = tag
                                found.append(id)
                            }
                        }
                    }
                    scored += found.count
                    found.withUnsafeBufferPointer { vectors.scoreCandidates(x, $0.baseAddress!, count: $0.count, metric: metric, into: result, row: query) }
                }
                shared.value[worker.index] += scored
            }
        }
        try Cancellation.check()
        var stats = IVFPQIndex.SearchStats()
        stats.queries = q
        stats.codesScanned = scanned.reduce(0, +)
        // Queries whose probes found fewer than k rows keep empty slots (-1 in the output).
        let table = NeighborTable(converting: result, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Every stored code ranked by Hamming distance to the query's, the `refine x k` nearest
    /// (ties by smaller id) scored exactly. The distances of a query go to a per-worker array
    /// with their histogram, whose running sum gives the distance where the candidates stop.
    func hammingSearch(_ prepared: FloatMatrix, config: IVFPQSearchConfig, started: Double) throws -> (NeighborTable, IVFPQIndex.SearchStats) {
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let q = prepared.rows, d = dimension, n = count, directions = tables * bits, words = words
        let want = min(n, config.refine * config.k)
        let result = NeighborLists(rows: q, k: config.k)
        let blockSize = 64
        let blocks = (q + blockSize - 1) / blockSize
        let workers = min(threads, max(blocks, 1))
        let projected = (0..<workers).map { _ in FloatMatrix(rows: blockSize, columns: directions) }
        let distances = UnsafeMutablePointer<UInt16>.allocate(capacity: workers * n)
        defer { distances.deallocate() }
        let metric = metric
        try packed.withUnsafeBufferPointer { packedBuffer in
            try thresholds.withUnsafeBufferPointer { thresholdBuffer in
                let shared = UnsafeSendable((packedBuffer.baseAddress!, thresholdBuffer.baseAddress!))
                try BlockedJoin.run(items: blocks, threads: workers, block: 1) { block, worker in
                    let (packed, thresholds) = shared.value
                    let first = block * blockSize, rows = min(blockSize, q - first)
                    let values = projected[worker.index]
                    BLAS.gemmABt(m: rows, n: directions, k: d, a: prepared.row(first), lda: d, b: projections.pointer, ldb: d,
                                 c: values.pointer, ldc: directions)
                    let distance = distances + worker.index * n
                    var histogram = [Int](repeating: 0, count: directions + 1)
                    let parts = UnsafeMutablePointer<Int32>.allocate(capacity: 4 * (directions + 1))
                    let chosen = UnsafeMutablePointer<Int32>.allocate(capacity: want)
                    defer { parts.deallocate(); chosen.deallocate() }
                    var code = [UInt64](repeating: 0, count: words)
                    for local in 0..<rows {
                        let query = first + local
                        for w in 0..<words { code[w] = 0 }
                        let margins = values.row(local)
                        for direction in 0..<directions where margins[direction] > thresholds[direction] {
                            code[direction / 64] |= 1 << UInt64(direction % 64)
                        }
                        // Distances first (popcnt, `VectorKernels.hammingDistances`), then their
                        // histogram in four interleaved parts: one count updated row after row
                        // waits on its own store whenever neighbouring rows share a distance.
                        code.withUnsafeBufferPointer { VectorKernels.hammingDistances(packed, rows: n, words: words, query: $0.baseAddress!, into: distance) }
                        histogram.withUnsafeMutableBufferPointer { counts in
                            let width = directions + 1
                            parts.update(repeating: 0, count: 4 * width)
                            var row = 0
                            while row + 4 <= n {
                                parts[Int(distance[row])] += 1
                                parts[width + Int(distance[row + 1])] += 1
                                parts[2 * width + Int(distance[row + 2])] += 1
                                parts[3 * width + Int(distance[row + 3])] += 1
                                row += 4
                            }
                            while row < n {
                                parts[Int(distance[row])] += 1
                                row += 1
                            }
                            for h in 0..<width { counts[h] = Int(parts[h]) + Int(parts[width + h]) + Int(parts[2 * width + h]) + Int(parts[3 * width + h]) }
                        }
                        // The distance at which `want` rows are reached, and how many rows at
                        // exactly that distance are taken (the smaller ids).
                        var cut = 0, below = 0
                        while below + histogram[cut] < want {
                            below += histogram[cut]
                            cut += 1
                        }
                        var atCut = want - below
                        var found = 0
                        let x = prepared.row(query)
                        let cutDistance = UInt16(cut)
                        // Sixteen distances per compare: almost every row is past the cut.
                        let cutLanes = SIMD16<UInt16>(repeating: cutDistance)
                        let raw = UnsafeRawPointer(distance)
                        var start = 0
                        while start < n {
                            let end = min(start + 16, n)
                            if end - start == 16, !any(raw.loadUnaligned(fromByteOffset: start * 2, as: SIMD16<UInt16>.self) .<= cutLanes) {
                                start = end
                                continue
                            }
                            for row in start..<end {
                                let h = distance[row]
                                if h < cutDistance || (h == cutDistance && atCut > 0) {
                                    if h == cutDistance { atCut -= 1 }
                                    chosen[found] = Int32(row)
                                    found += 1
                                }
                            }
                            start = end
                        }
                        vectors.scoreCandidates(x, chosen, count: found, metric: metric, into: result, row: query)
                    }
                }
            }
        }
        try Cancellation.check()
        var stats = IVFPQIndex.SearchStats()
        stats.queries = q
        stats.codesScanned = q * n
        let table = NeighborTable(converting: result, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// The bucket holding `code` (binary search), nil when no row has it.
    @inline(__always)
    static func find(_ code: UInt32, in codes: [UInt32]) -> Int? {
        var low = 0, high = codes.count
        while low < high {
            let middle = (low + high) / 2
            if codes[middle] < code { low = middle + 1 } else { high = middle }
        }
        return low < codes.count && codes[low] == code ? low : nil
    }
}

/// The codes a query probes in one table: its own, then the codes with the bits it was least
/// sure of flipped, by increasing sum of the flipped bits' squared margins (Lv et al.'s
/// generation of perturbation sets: from set A, "shift" replaces its largest element i by i + 1
/// and "expand" adds i + 1, over the bits sorted by margin; every set comes out once, in
/// order of score).
struct ProbePlanner {
    let bits: Int
    /// The bits by increasing squared margin, and those margins.
    var order: [Int]
    var squared: [Float]
    var heap: [Candidate] = []

    struct Candidate {
        var score: Float
        /// Largest position (in `order`) of the set.
        var last: Int
        /// The set's bits, as a mask over the code.
        var flips: UInt32
    }

    init(bits: Int, capacity: Int) {
        self.bits = bits
        order = Array(0..<bits)
        squared = [Float](repeating: 0, count: bits)
        heap.reserveCapacity(2 * capacity + 2)
    }

    /// Writes the first `count` codes to probe into `codes`; returns how many there are (at
    /// most 2^bits).
    mutating func plan(margins values: UnsafePointer<Float>, thresholds: [Float], offset: Int, count: Int, into codes: inout [UInt32]) -> Int {
        var code: UInt32 = 0
        for bit in 0..<bits {
            let margin = values[bit] - thresholds[offset + bit]
            if margin > 0 { code |= 1 << UInt32(bit) }
            squared[bit] = margin * margin
        }
        codes[0] = code
        guard count > 1 else { return 1 }
        // Insertion sort of the bits by margin (a few dozen at most).
        for index in 0..<bits { order[index] = index }
        for i in 1..<bits {
            let value = order[i]
            var j = i
            while j > 0 && squared[order[j - 1]] > squared[value] {
                order[j] = order[j - 1]
                j -= 1
            }
            order[j] = value
        }
        heap.removeAll(keepingCapacity: true)
        push(Candidate(score: squared[order[0]], last: 0, flips: 1 << UInt32(order[0])))
        var made = 1
        while made < count, let best = pop() {
            codes[made] = code ^ best.flips
            made += 1
            let next = best.last + 1
            if next < bits {
                let nextBit = UInt32(1) << UInt32(order[next]), lastBit = UInt32(1) << UInt32(order[best.last])
                push(Candidate(score: best.score - squared[order[best.last]] + squared[order[next]], last: next, flips: (best.flips ^ lastBit) | nextBit))
                push(Candidate(score: best.score + squared[order[next]], last: next, flips: best.flips | nextBit))
            }
        }
        return made
    }

    private mutating func push(_ candidate: Candidate) {
        heap.append(candidate)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].score < heap[parent].score else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() -> Candidate? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && heap[left].score < heap[smallest].score { smallest = left }
                if right < heap.count && heap[right].score < heap[smallest].score { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
