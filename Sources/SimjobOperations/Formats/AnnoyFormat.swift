import Foundation
import SimjobAlgorithms
import SimjobCore

/// Annoy's own index file (`annoylib.h`, `save`/`load`), for random-projection forests.
public enum AnnoyFormat {
    /// The bytes of a forest in Annoy's layout: an array of nodes of one size, `s` bytes each.
    /// Nodes 0 ..< n are the rows (`n_descendants` = 1, the vector); then every split (its
    /// `n_descendants` = rows below it, its two children as node numbers, its normal, and for
    /// euclidean its offset `a`), then every leaf of two or more rows (a "bucket": its row count,
    /// then the row numbers where the children start); a one-row leaf is the row's own node;
    /// last, a copy of each tree's root, which is how `load` finds the roots (the nodes at the end
    /// with the most descendants). Euclidean nodes are `int32 n_descendants; float a; int32
    /// children[2]; float v[d]`; angular ones `int32 n_descendants; int32 children[2] (the
    /// row's squared norm in a row node); float v[d]`. Annoy tells a bucket from a split by
    /// `n_descendants <= K`, K = d + 2 for both, so only forests with leaves of d + 2 rows (the
    /// default) keep their meaning, and Annoy has no inner-product metric of this layout. Load
    /// with `annoy.AnnoyIndex(d, "euclidean" or "angular").load(path)`.
    public static func bytes(_ forest: RPForestIndex, path: String) throws -> Data {
        let d = forest.dimension, n = forest.count, K = d + 2
        guard forest.metric != .ip else {
            throw SimjobError("\(path): an inner-product forest has no Annoy form (Annoy's dot metric stores another node layout)")
        }
        guard forest.leafSize == K else {
            throw SimjobError("\(path): leaf_size = \(forest.leafSize) but Annoy reads leaves of exactly d + 2 = \(K) rows; train with the default --leaf-size 0")
        }
        guard n > K else { throw SimjobError("\(path): \(n) rows fit in one Annoy leaf (\(K)); Annoy could not find the roots of such a forest") }
        let euclidean = forest.metric == .euclidean
        let childrenOffset = euclidean ? 8 : 4, vectorOffset = euclidean ? 16 : 12
        let size = vectorOffset + 4 * d
        let leaves = forest.leafStarts.count - 1
        func leafRows(_ leaf: Int) -> ArraySlice<Int32> { forest.leafRows[Int(forest.leafStarts[leaf])..<Int(forest.leafStarts[leaf + 1])] }
        // Node numbers: rows, splits, then buckets.
        var bucketNode = [Int32](repeating: -1, count: leaves)
        var buckets = 0
        for leaf in 0..<leaves {
            let rows = leafRows(leaf)
            guard !rows.isEmpty else { throw SimjobError("\(path): leaf \(leaf) is empty (altered or corrupt index)") }
            if rows.count > 1 {
                bucketNode[leaf] = Int32(n + forest.splits + buckets)
                buckets += 1
            }
        }
        func node(_ child: Int32) -> Int32 {
            if child >= 0 { return Int32(n) + child }
            let leaf = Int(-child - 1)
            return bucketNode[leaf] >= 0 ? bucketNode[leaf] : leafRows(leaf).first!
        }
        func count(_ child: Int32, _ descendants: [Int32]) -> Int32 { child >= 0 ? descendants[Int(child)] : Int32(leafRows(Int(-child - 1)).count) }
        // Rows under each split: children come after their parent, so from the last split back.
        var descendants = [Int32](repeating: 0, count: forest.splits)
        for split in stride(from: forest.splits - 1, through: 0, by: -1) {
            descendants[split] = count(forest.children[2 * split], descendants) + count(forest.children[2 * split + 1], descendants)
        }
        let total = n + forest.splits + buckets + forest.trees
        var data = Data(count: total * size)
        data.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            func put(_ value: Int32, _ at: Int) { base.storeBytes(of: value.littleEndian, toByteOffset: at, as: Int32.self) }
            func putFloat(_ value: Float, _ at: Int) { base.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: at, as: UInt32.self) }
            func putVector(_ vector: UnsafePointer<Float>, _ at: Int) { for c in 0..<d { putFloat(vector[c], at + vectorOffset + 4 * c) } }
            for row in 0..<n {
                let at = row * size, vector = forest.vectors.row(row)
                put(1, at)
                if !euclidean {
                    var norm: Float = 0
                    for c in 0..<d { norm += vector[c] * vector[c] }
                    putFloat(norm, at + 4)
                }
                putVector(vector, at)
            }
            func writeSplit(_ split: Int, at: Int) {
                put(descendants[split], at)
                if euclidean { putFloat(forest.offsets[split], at + 4) }
                put(node(forest.children[2 * split]), at + childrenOffset)
                put(node(forest.children[2 * split + 1]), at + childrenOffset + 4)
                putVector(forest.normals.row(split), at)
            }
            for split in 0..<forest.splits { writeSplit(split, at: (n + split) * size) }
            for leaf in 0..<leaves where bucketNode[leaf] >= 0 {
                let at = Int(bucketNode[leaf]) * size, rows = leafRows(leaf)
                put(Int32(rows.count), at)
                for (slot, row) in rows.enumerated() { put(row, at + childrenOffset + 4 * slot) }
            }
            // The roots' copies, in tree order.
            for (tree, root) in forest.roots.enumerated() {
                let at = (n + forest.splits + buckets + tree) * size
                if root >= 0 {
                    writeSplit(Int(root), at: at)
                } else {
                    let source = Int(node(root)) * size
                    (base + at).copyMemory(from: base + source, byteCount: size)
                }
            }
        }
        return data
    }
}
