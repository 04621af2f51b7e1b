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
        let file = try HDF5File.open(indexPath)
        let type = try file.attribute("type", of: "index")?.stringValue ?? ""
        switch (format, type) {
        case (.faiss, "IVFPQ"):
            let index = try IVFPQIndex.load(from: file)
            let data = FAISSFormat.ivfpq(index)
            try AtomicDataFile.write(data, to: output)
            return Exported(type: "IVF-PQ", vectors: index.count, bytes: data.count)
        case (.faiss, "IVFFlat"):
            let index = try IVFFlatIndex.load(from: file)
            let data = FAISSFormat.ivfflat(index)
            try AtomicDataFile.write(data, to: output)
            return Exported(type: "IVF-Flat", vectors: index.count, bytes: data.count)
        case (.faiss, "HNSW"):
            let index = try HNSWIndex.load(from: file)
            let data = FAISSFormat.faissHNSW(index)
            try AtomicDataFile.write(data, to: output)
            return Exported(type: "HNSW", vectors: index.count, bytes: data.count)
        case (.hnswlib, "HNSW"):
            let index = try HNSWIndex.load(from: file)
            let data = HnswlibFormat.bytes(index)
            try AtomicDataFile.write(data, to: output)
            return Exported(type: "HNSW", vectors: index.count, bytes: data.count)
        case (.hnswlib, "IVFPQ"), (.hnswlib, "IVFFlat"):
            throw SimjobError("\(indexPath): an \(type == "IVFPQ" ? "IVF-PQ" : "IVF-Flat") index has no hnswlib form (hnswlib holds HNSW graphs); use --format faiss")
        default:
            throw SimjobError("\(indexPath): index type '\(type)' cannot be exported as \(format.rawValue)")
        }
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
        let imported = try FAISSFormat.readIndex(data, path: path)
        if let source {
            let vectors = try VectorSource(source)
            guard vectors.rows == imported.count, vectors.dimension == imported.dimension else {
                throw SimjobError("\(source): shape (\(vectors.rows), \(vectors.dimension)) does not match the FAISS index's \(imported.count) vectors of dimension \(imported.dimension)")
            }
        }
        let out = try AtomicOutputFile(output)
        let recorded = source?.description ?? ""
        let index: any SearchableIndex
        if let pq = imported as? IVFPQIndex {
            let copy = IVFPQIndex(metric: pq.metric, pq: pq.pq, coarseCentroids: pq.coarseCentroids, listOffsets: pq.listOffsets,
                                  ids: pq.ids, codes: pq.codes, source: recorded)
            try copy.save(to: out.file)
            index = copy
        } else {
            let flat = imported as! IVFFlatIndex
            let copy = IVFFlatIndex(metric: flat.metric, coarseCentroids: flat.coarseCentroids, listOffsets: flat.listOffsets,
                                    ids: flat.ids, vectors: flat.vectors, source: recorded)
            try copy.save(to: out.file)
            index = copy
        }
        try out.file.setAttribute("imported_from", .string(path), on: "index")
        if let source { try Provenance.stamp(out.file, from: source, artifact: "index", settings: ["imported_from": path]) }
        try out.file.setAttribute("index_size_bytes", .int(Int64(index.sizeInBytes)), on: "index")
        try out.commit()
        return index
    }
}
