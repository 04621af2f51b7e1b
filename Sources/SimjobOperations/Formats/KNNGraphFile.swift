import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// The k-NN graph layout, written by `knn-graph` and read back by graph evaluation:
///
///     knn_graph/               attributes metric, k, method, source (FILE:DATASET), and
///                              method-specific ones (approx: partitions, nprobe)
///     knn_graph/neighbors      int32 [n, k]   nearest first, ties by smaller id, no self
///     knn_graph/distances      float32 [n, k] ann-benchmarks conventions
///     /                        attribute distance (the metric, as ann-benchmarks names it)
public enum KNNGraphFile {
    public static let group = "knn_graph"

    public static func write(
        _ table: NeighborTable, metric: Metric, method: String, source: DatasetReference,
        extra: [(String, AttributeValue)] = [], to file: HDF5File
    ) throws {
        try OutputWriting.write(table, to: file, neighbors: "\(group)/neighbors", distances: "\(group)/distances")
        try writeAttributes(k: table.k, metric: metric, method: method, source: source, extra: extra, to: file)
    }

    /// The group's attributes and the root's `distance`, once its datasets are written.
    public static func writeAttributes(
        k: Int, metric: Metric, method: String, source: DatasetReference, extra: [(String, AttributeValue)] = [], to file: HDF5File
    ) throws {
        try file.setAttribute("metric", .string(metric.rawValue), on: group)
        try file.setAttribute("k", .int(Int64(k)), on: group)
        try file.setAttribute("method", .string(method), on: group)
        try file.setAttribute("source", .string(source.description), on: group)
        for (name, value) in extra { try file.setAttribute(name, value, on: group) }
        try file.setAttribute("distance", .string(metric.rawValue))
    }

    /// What a graph file holds, checked: its neighbour ids, and the metric and source vectors it
    /// records.
    public struct Contents {
        public var neighbors: HDF5Dataset
        public var metric: Metric?
        public var source: DatasetReference?
    }

    public static func read(_ file: HDF5File) throws -> Contents {
        guard file.isDataset("\(group)/neighbors") else {
            throw SimjobError("\(file.path): no \(group)/neighbors (written by simjob knn-graph)")
        }
        let neighbors = try file.dataset("\(group)/neighbors")
        try neighbors.requireMatrix()
        guard neighbors.elementType.isInteger else {
            throw SimjobError("\(neighbors.location): element type \(neighbors.elementType), expected integer ids")
        }
        let metric = try file.attribute("metric", of: group)?.stringValue.flatMap(Metric.init(name:))
        let source = try file.attribute("source", of: group)?.stringValue.map { DatasetReference(parsing: $0, defaultDataset: "train") }
        return Contents(neighbors: neighbors, metric: metric, source: source)
    }

    /// The neighbour ids of a graph that must be of `rows` rows (`what` names them), each id in
    /// `0..<rows` (or -1 for an empty slot); n x k, row-major.
    public static func ids(_ file: HDF5File, rows: Int, of what: String) throws -> (ids: [Int32], k: Int) {
        let neighbors = try read(file).neighbors
        guard neighbors.rows == rows else {
            throw SimjobError("\(neighbors.location): shape \(neighbors.shapeDescription), expected \(rows) rows (the graph of \(what))")
        }
        let ids = try neighbors.readAll(as: Int64.self)
        if let position = ids.firstIndex(where: { $0 < -1 || $0 >= Int64(rows) }) {
            throw SimjobError("\(neighbors.location): entry \(position) is \(ids[position]), outside 0..<\(rows)")
        }
        return (ids.map { Int32($0) }, neighbors.columns)
    }
}
