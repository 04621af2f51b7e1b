import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// `simjob export` and `simjob import`: simjob's indexes in other tools' own file formats.
public enum ExportOperations {
    /// The formats an index can be exported to.
    public enum Format: String, CaseIterable, Sendable {
        case faiss
        case hnswlib
        case annoy
    }

    /// What an export wrote.
    public struct Exported: Sendable {
        public var type: String
        public var vectors: Int
        public var bytes: Int
    }

    /// Loads (and so fully validates) the index in `indexPath` and writes it to `output` in
    /// `format`, atomically: a damaged index is refused and nothing is written.
    public static func export(index indexPath: String, format: Format, output: String) throws -> Exported {
        let index = try IndexFile.load(HDF5File.open(indexPath))
        let data: Data, type: String
        switch (format, index) {
        case (.faiss, let pq as IVFPQIndex): (data, type) = (FAISSFormat.ivfpq(pq), "IVF-PQ")
        case (.faiss, let flat as IVFFlatIndex): (data, type) = (FAISSFormat.ivfflat(flat), "IVF-Flat")
        case (.faiss, let hnsw as HNSWIndex): (data, type) = (FAISSFormat.faissHNSW(hnsw), "HNSW")
        case (.hnswlib, let hnsw as HNSWIndex): (data, type) = (HnswlibFormat.bytes(hnsw), "HNSW")
        case (.annoy, let forest as RPForestIndex): (data, type) = (try AnnoyFormat.bytes(forest, path: indexPath), "RP-trees")
        case (.annoy, _):
            throw SimjobError("\(indexPath): an \(index.summary) index has no Annoy form (Annoy holds random-projection forests); use --format faiss")
        case (.hnswlib, _):
            throw SimjobError("\(indexPath): an \(index.summary) index has no hnswlib form (hnswlib holds HNSW graphs); use --format faiss")
        default:
            throw SimjobError("\(indexPath): an \(index.summary) index cannot be exported as \(format.rawValue)")
        }
        try AtomicDataFile.write(data, to: output)
        return Exported(type: type, vectors: index.count, bytes: data.count)
    }

    /// Reads a FAISS index file (IVF-PQ or IVF-Flat) and saves it as a simjob index. `source` names the
    /// vectors it was built from (for `search --refine` and `verify`), when known.
    public static func importFAISS(_ path: String, output: String, source: DatasetReference?) throws -> any SearchableIndex {
        guard FileManager.default.fileExists(atPath: path) else { throw SimjobError("\(path): no such file") }
        InputRegistry.record(path)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw SimjobError("\(path): cannot read: \(error.localizedDescription)")
        }
        let index = try FAISSFormat.readIndex(data, path: path, source: source?.description ?? "")
        if let source {
            let vectors = try VectorSource(source)
            guard vectors.rows == index.count, vectors.dimension == index.dimension else {
                throw SimjobError("\(source): shape (\(vectors.rows), \(vectors.dimension)) does not match the FAISS index's \(index.count) vectors of dimension \(index.dimension)")
            }
        }
        let out = try AtomicOutputFile(output)
        try IndexFile.save(index, to: out.file)
        try out.file.setAttribute("imported_from", .string(path), on: "index")
        if let source { try Provenance.stamp(out.file, from: source, artifact: "index", settings: ["imported_from": path]) }
        try out.file.setAttribute("index_size_bytes", .int(Int64(index.sizeInBytes)), on: "index")
        try out.commit()
        return index
    }
}
