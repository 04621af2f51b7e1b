import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels

/// NN-descent's local join (Dong, Moses and Li, 2011), with each join one small sgemm.
///
/// Two rows that share a neighbour are likely neighbours of each other. For every row `u`,
/// its join set is the first `expand` entries of its list plus up to `reverse` rows that list
/// `u` among their first `expand`; every pair of the set is scored at once (the Gram matrix of
/// the gathered set, one sgemm, so each vector read is used for the whole set) and offered to
/// both rows' lists. A pair is thus scored once per shared neighbour, where scoring each row's
/// neighbours-of-neighbours separately scores it from both sides, one memory-bound distance at a
/// time.
///
/// Rounds are deterministic whatever the threads: the scoring phase only reads the lists and
/// writes proposals into per-worker buckets (by target row), the apply phase inserts each
/// bucket's proposals into its rows, and a list's final content does not depend on the order
/// its candidates arrive in (ties are broken by id). Rows are processed in chunks, each chunk
/// scored against the lists as the previous chunks left them, which bounds the proposals held
/// in memory.
final class LocalJoin {
    /// List entries of each row that form its join set (forward neighbours).
    var expand: Int
    /// Reverse neighbours added to a row's join set, at most.
    var reverse: Int
    var threads: Int
    /// Rows per chunk (scoring then applying).
    var chunkRows = 1 << 13
    /// The join sets of the previous round (forward, then reverse, per row): a pair of two
    /// members that were both in the set then has been offered already and is skipped, as
    /// NN-descent joins only pairs with a new member.
    var previousForward: [Int32]? = nil
    var previousReverse: [Int32]? = nil
    /// When set (the lists' own space, full dimension), a proposal that passes a list's bound
    /// is re-scored exactly from these vectors before it is inserted, so lists hold exact scores.
    var exactVectors: FloatMatrix? = nil

    /// Joins sets of `size` forward and `size` reverse neighbours from the next round on; every
    /// member then counts as new once.
    func resize(to size: Int) {
        expand = size
        reverse = size
        previousForward = nil
        previousReverse = nil
        spareForward = nil
        spareReverse = nil
    }

    // Storage kept from round to round: fresh pages cost more than the work done in them on
    // some machines (page clearing took a fifth of a graph's time on a 60k-row set), so the
    // proposal buckets, the stamps and the set arrays of two rounds ago are reused.
    private var buckets: [Buckets] = []
    private var stamps: UnsafeMutablePointer<Int32>? = nil
    private var stampCount = 0
    private var spareForward: [Int32]? = nil
    private var spareReverse: [Int32]? = nil

    deinit { stamps?.deallocate() }

    /// `count` stamps, all -1, reusing the previous round's storage.
    private func resetStamps(count: Int) -> UnsafeMutablePointer<Int32> {
        if let stamps, stampCount == count {
            stamps.update(repeating: -1, count: count)
            return stamps
        }
        stamps?.deallocate()
        let fresh = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        fresh.initialize(repeating: -1, count: count)
        stamps = fresh
        stampCount = count
        return fresh
    }

    /// An array of `count` entries, taken from `spare` when it has that size (contents stale).
    private static func reuse(_ spare: inout [Int32]?, count: Int, filling value: Int32) -> [Int32] {
        if var array = spare.take(), array.count == count {
            array.withUnsafeMutableBufferPointer { $0.update(repeating: value) }
            return array
        }
        return [Int32](repeating: value, count: count)
    }

    init(expand: Int, reverse: Int, threads: Int) {
        self.expand = expand
        self.reverse = reverse
        self.threads = threads
    }

    struct Proposal {
        var target: Int32
        var candidate: Int32
        var score: Float
    }

    /// A growable run of proposals (no copy-on-write checks in the inner loop). It grows with
    /// `realloc`, which moves a large block by remapping its pages rather than copying them into
    /// fresh ones (growing by copy took a tenth of a Fashion-MNIST graph's time, most of it
    /// the kernel clearing the new pages).
    struct ProposalRun {
        var base: UnsafeMutablePointer<Proposal>
        var count = 0
        var capacity: Int

        init() {
            capacity = 256
            guard let raw = malloc(capacity * MemoryLayout<Proposal>.stride) else { fatalError("out of memory for join proposals") }
            base = raw.bindMemory(to: Proposal.self, capacity: capacity)
        }

        @inline(__always)
        mutating func append(_ proposal: Proposal) {
            if count == capacity {
                guard let raw = realloc(base, 2 * capacity * MemoryLayout<Proposal>.stride) else { fatalError("out of memory for join proposals") }
                capacity *= 2
                base = raw.bindMemory(to: Proposal.self, capacity: capacity)
            }
            (base + count).initialize(to: proposal)
            count += 1
        }
    }

    /// Per worker, proposals by bucket of target rows.
    final class Buckets: @unchecked Sendable {
        let runs: UnsafeMutablePointer<ProposalRun>
        let count: Int
        init(count: Int) {
            self.count = count
            runs = .allocate(capacity: count)
            for index in 0..<count { (runs + index).initialize(to: ProposalRun()) }
        }
        deinit {
            for index in 0..<count { free(runs[index].base) }
            runs.deallocate()
        }
    }

    /// One round over every row of `vectors` (the space the lists' scores are in; squared
    /// norms `norms`). Returns the list entries that changed and the pairs scored.
    func round(_ vectors: FloatMatrix, norms: [Float], metric: Metric, lists: NeighborLists) throws -> (inserted: Int, scored: Int) {
        let n = vectors.rows, m = vectors.columns, width = lists.k, expand = min(self.expand, width)
        // Forward sets as they are before the round; reverse sets from them.
        var forward = Self.reuse(&spareForward, count: n * expand, filling: NeighborLists.emptyID)
        for row in 0..<n {
            for slot in 0..<expand { forward[row * expand + slot] = lists.ids[row * width + slot] }
        }
        var reverseCount = [Int32](repeating: 0, count: n)
        var reverseIDs = Self.reuse(&spareReverse, count: n * max(reverse, 1), filling: NeighborLists.emptyID)
        if reverse > 0 {
            for row in 0..<n {
                for slot in 0..<expand {
                    let id = forward[row * expand + slot]
                    guard id != NeighborLists.emptyID else { break }
                    let count = Int(reverseCount[Int(id)])
                    if count < reverse {
                        reverseIDs[Int(id) * reverse + count] = Int32(row)
                        reverseCount[Int(id)] += 1
                    }
                }
            }
        }
        let setLimit = expand + reverse
        let bucketRows = 4096
        let bucketCount = (n + bucketRows - 1) / bucketRows
        let workerCount = max(1, threads)
        if buckets.count != workerCount || buckets.first?.count != bucketCount {
            buckets = (0..<workerCount).map { _ in Buckets(count: bucketCount) }
        }
        let buckets = self.buckets
        let scratch = (0..<workerCount).map { _ in (FloatMatrix(rows: setLimit, columns: m), FloatMatrix(rows: setLimit, columns: (setLimit + 15) / 16 * 16)) }
        var inserted = 0, scored = 0
        let itemRows = 256
        let stamps = resetStamps(count: workerCount * 2 * n)
        for chunkStart in stride(from: 0, to: n, by: chunkRows) {
            let chunkEnd = min(chunkStart + chunkRows, n)
            let items = (chunkEnd - chunkStart + itemRows - 1) / itemRows
            let scoredCounts = UnsafeMutablePointer<Int>.allocate(capacity: workerCount)
            scoredCounts.initialize(repeating: 0, count: workerCount)
            defer { scoredCounts.deallocate() }
            try forward.withUnsafeBufferPointer { forwardBuffer in
                try reverseIDs.withUnsafeBufferPointer { reverseBuffer in
                    try norms.withUnsafeBufferPointer { normBuffer in
                        let shared = UnsafeSendable((forwardBuffer.baseAddress!, reverseBuffer.baseAddress!, normBuffer.baseAddress!))
                        let previousForward = self.previousForward, previousReverse = self.previousReverse
                        let expand = expand, reverse = self.reverse
                        try BlockedJoin.run(items: items, threads: workerCount, block: 1) { item, worker in
                            let (forward, reverseIDs, norms) = shared.value
                            let (gathered, gram) = scratch[worker.index]
                            let bucket = buckets[worker.index]
                            var set = [Int32](repeating: 0, count: setLimit)
                            var old = [Int32](repeating: 0, count: setLimit)
                            let setNorms = UnsafeMutablePointer<Float>.allocate(capacity: setLimit + 16)
                            let setBounds = UnsafeMutablePointer<Float>.allocate(capacity: setLimit + 16)
                            defer { setNorms.deallocate(); setBounds.deallocate() }
                            let normWeight = SIMD16<Float>(repeating: metric.normWeight), constant = SIMD16<Float>(repeating: metric.constant)
                            let dotFactor = SIMD16<Float>(repeating: metric.dotFactor)
                            let laneIndex = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                            let laneBits = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
                            var pairs = 0
                            // Per worker stamps: `member[id] == tag` once id is in u's set,
                            // `previous[id] == tag` when it was in u's set last round.
                            let member = stamps + worker.index * 2 * n, previous = member + n
                            for u in (chunkStart + item * itemRows)..<min(chunkStart + (item + 1) * itemRows, chunkEnd) {
                                let tag = Int32(truncatingIfNeeded: u)
                                if let previousForward, let previousReverse {
                                    for slot in 0..<expand {
                                        let id = previousForward[u * expand + slot]
                                        if id == NeighborLists.emptyID { break }
                                        previous[Int(id)] = tag
                                    }
                                    for slot in 0..<reverse {
                                        let id = previousReverse[u * reverse + slot]
                                        if id == NeighborLists.emptyID { break }
                                        previous[Int(id)] = tag
                                    }
                                }
                                // The join set, members new since the previous round first.
                                var size = 0, oldCount = 0
                                func add(_ id: Int32) {
                                    if member[Int(id)] == tag { return }
                                    member[Int(id)] = tag
                                    if previous[Int(id)] == tag {
                                        old[oldCount] = id
                                        oldCount += 1
                                    } else {
                                        set[size] = id
                                        size += 1
                                    }
                                }
                                for slot in 0..<expand {
                                    let id = forward[u * expand + slot]
                                    guard id != NeighborLists.emptyID else { break }
                                    add(id)
                                }
                                for slot in 0..<reverse {
                                    let id = reverseIDs[u * reverse + slot]
                                    guard id != NeighborLists.emptyID else { break }
                                    add(id)
                                }
                                let newCount = size
                                guard newCount > 0, newCount + oldCount >= 2 else { continue }
                                for index in 0..<oldCount { set[size + index] = old[index] }
                                size += oldCount
                                for index in 0..<size {
                                    gathered.row(index).update(from: vectors.row(Int(set[index])), count: m)
                                    setNorms[index] = norms[Int(set[index])]
                                }
                                // New members against every member: old pairs were offered before.
                                // Rows of the Gram matrix are padded to 16 columns; padding lanes
                                // get an infinite norm and bound, so they never pass.
                                let stride = (size + 15) / 16 * 16
                                for index in 0..<size { setBounds[index] = lists.bounds[Int(set[index])] }
                                for index in size..<stride {
                                    setNorms[index] = .infinity
                                    setBounds[index] = -.infinity
                                }
                                BLAS.gemmABt(m: newCount, n: size, k: m, a: gathered.pointer, lda: m, b: gathered.pointer, ldb: m,
                                             c: gram.pointer, ldc: stride)
                                let normBytes = UnsafeRawPointer(setNorms), boundBytes = UnsafeRawPointer(setBounds)
                                for i in 0..<newCount {
                                    let v = set[i]
                                    let row = gram.pointer + i * stride
                                    for index in size..<stride { row[index] = 0 }
                                    let rowBytes = UnsafeRawPointer(row)
                                    let boundV = SIMD16<Float>(repeating: setBounds[i])
                                    let normV = SIMD16<Float>(repeating: setNorms[i])
                                    var chunk = (i + 1) / 16 * 16
                                    while chunk < stride {
                                        var score = normWeight * (normV + normBytes.loadUnaligned(fromByteOffset: chunk * 4, as: SIMD16<Float>.self)) + constant
                                        score.addProduct(dotFactor, rowBytes.loadUnaligned(fromByteOffset: chunk * 4, as: SIMD16<Float>.self))
                                        let later = laneIndex .> SIMD16<Int32>(repeating: Int32(i - chunk))
                                        let forV = (score .< boundV) .& later
                                        let forW = (score .< boundBytes.loadUnaligned(fromByteOffset: chunk * 4, as: SIMD16<Float>.self)) .& later
                                        if VectorKernels.anyLane(forV .| forW) {
                                            var bitsV = (unsafeBitCast(forV, to: SIMD16<Int32>.self) & laneBits).wrappedSum()
                                            while bitsV != 0 {
                                                let lane = Int(bitsV.trailingZeroBitCount)
                                                bitsV &= bitsV - 1
                                                bucket.runs[Int(v) / bucketRows].append(Proposal(target: v, candidate: set[chunk + lane], score: score[lane]))
                                            }
                                            var bitsW = (unsafeBitCast(forW, to: SIMD16<Int32>.self) & laneBits).wrappedSum()
                                            while bitsW != 0 {
                                                let lane = Int(bitsW.trailingZeroBitCount)
                                                bitsW &= bitsW - 1
                                                let w = set[chunk + lane]
                                                bucket.runs[Int(w) / bucketRows].append(Proposal(target: w, candidate: v, score: score[lane]))
                                            }
                                        }
                                        chunk += 16
                                    }
                                    pairs += size - i - 1
                                }
                            }
                            scoredCounts[worker.index] += pairs
                        }
                    }
                }
            }
            scored += (0..<workerCount).reduce(0) { $0 + scoredCounts[$1] }
            // Apply: buckets hold disjoint rows, so each is one work item.
            let insertedCounts = UnsafeMutablePointer<Int>.allocate(capacity: bucketCount)
            insertedCounts.initialize(repeating: 0, count: bucketCount)
            defer { insertedCounts.deallocate() }
            let exact = exactVectors
            try BlockedJoin.run(items: bucketCount, threads: workerCount, block: 1) { bucketIndex, _ in
                var count = 0
                for worker in buckets {
                    let run = worker.runs[bucketIndex]
                    for index in 0..<run.count {
                        let proposal = run.base[index]
                        let row = Int(proposal.target)
                        // The margin covers the expansion's rounding when scores are re-done exactly.
                        let allowance = exact == nil ? 0 : TileScan.roundingMargin * (norms[row] + norms[Int(proposal.candidate)])
                        if proposal.score - allowance > lists.bounds[row] { continue }
                        if let exact {
                            if lists.contains(row: row, id: proposal.candidate) { continue }
                            lists.insert(row: row, score: metric.exactScore(exact.row(row), exact.row(Int(proposal.candidate)), dimension: exact.columns),
                                         id: proposal.candidate)
                            count += 1
                        } else if lists.insertOrLower(row: row, score: proposal.score, id: proposal.candidate) {
                            // A pair scored in two join sets can differ in its last bits (two
                            // sgemm calls of different shapes); which worker's proposal comes
                            // first depends on scheduling, so the lower score is kept.
                            count += 1
                        }
                    }
                    worker.runs[bucketIndex].count = 0
                }
                insertedCounts[bucketIndex] = count
            }
            inserted += (0..<bucketCount).reduce(0) { $0 + insertedCounts[$1] }
        }
        spareForward = previousForward.take()
        spareReverse = previousReverse.take()
        previousForward = forward
        previousReverse = reverseIDs
        return (inserted, scored)
    }
}
