import Foundation
import SimjobAlgorithms

/// hnswlib's own index file (`hnswlib/hnswalg.h`, `saveIndex`/`loadIndex`), for HNSW indexes.
public enum HnswlibFormat {
    /// The bytes of an HNSW index in hnswlib's `saveIndex` layout (`hnswalg.h`): size_t
    /// offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
    /// offsetData; int maxlevel; uint32 enterpoint; size_t maxM, maxM0, M; double mult; size_t
    /// ef_construction; then per element its level-0 block (uint32 link count, 2M uint32 links,
    /// the vector, size_t label) and per element its upper links (uint32 byte size, then per
    /// level a uint32 count and M uint32 links). Load with `hnswlib.Index(space, dim)` and
    /// `load_index`: space 'l2' (squared L2), 'cosine' (angular; vectors stored unit length) or
    /// 'ip' (1 - dot).
    public static func bytes(_ index: HNSWIndex) -> Data {
        var out = FAISSFormat.Writer()
        let d = index.dimension, n = index.count, m = index.m, m0 = 2 * m
        let linksLevel0 = m0 * 4 + 4, linksUpper = m * 4 + 4
        let perElement = linksLevel0 + d * 4 + 8
        for value in [0, n, n, perElement, linksLevel0 + d * 4, linksLevel0] { out.size(value) }
        out.int32(Int32(index.maxLevel))
        out.int32(Int32(index.entryPoint))
        out.size(m)
        out.size(m0)
        out.size(m)
        withUnsafeBytes(of: (1 / log(Double(m))).bitPattern.littleEndian) { out.data.append(contentsOf: $0) }
        out.size(200)
        for node in 0..<n {
            let links = index.base[(node * m0)..<((node + 1) * m0)]
            let used = links.firstIndex(of: -1).map { $0 - links.startIndex } ?? m0
            out.int32(Int32(used))
            for slot in 0..<m0 { out.int32(slot < used ? links[links.startIndex + slot] : 0) }
            out.floats(index.vectors.row(node), count: d)
            out.int64(Int64(node))
        }
        for node in 0..<n {
            let level = Int(index.levels[node])
            out.int32(Int32(level * linksUpper))
            for l in stride(from: 1, through: level, by: 1) {
                let layer = index.upper[l - 1], at = Int(index.positions[l - 1][node])
                let links = layer.links[(at * m)..<((at + 1) * m)]
                let used = links.firstIndex(of: -1).map { $0 - links.startIndex } ?? m
                out.int32(Int32(used))
                for slot in 0..<m { out.int32(slot < used ? links[links.startIndex + slot] : 0) }
            }
        }
        return out.data
    }

}
