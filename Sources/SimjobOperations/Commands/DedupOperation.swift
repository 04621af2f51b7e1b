import Foundation
import SimjobAlgorithms
import Logging
import SimjobHDF5
import SimjobKernels

/// `simjob dedup`: reads the set, joins, groups, writes the masks (and the kept rows).
public enum DedupOperation {
    public static func run(
        input: DatasetReference, output: String, config: DedupConfig, writePairs: Bool, writeKept: String?,
        logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> DedupResult {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        guard !config.thresholds.isEmpty else { throw SimjobError("dedup: give at least one --threshold") }
        let spilling = try spills(source, config: config)
        let out = try AtomicOutputFile(output)
        let kept = try writeKept.map { try AtomicOutputFile($0) }
        // Above the memory limit the vectors live in spill files beside the output (unlinked at
        // once, so nothing is left behind), paged in and out by the kernel.
        let spill = spilling ? out.output.folder : nil
        if spill != nil {
            let plan = Dedup.memoryPlan(rows: source.rows, dimension: source.dimension, config: config)
            logger?.info("dedup: about \(formatBytes(plan.vectors + plan.state)) besides the pairs, above the memory limit of \(formatBytes(ProcessMemory.limit(config.memoryLimit))): the vectors (\(formatBytes(plan.vectors))) go to spill files in \(out.output.folder)")
        }
        // The provenance's content comes from this read, before the rows are normalised.
        let (vectors, content) = try Provenance.readMatrix(source, metric: metric, spillingTo: spill, threads: config.threads)
        var dedup = Dedup(config: config, logger: logger)
        dedup.progressStyle = progressStyle
        let result = try dedup.run(vectors, metric: metric, spillingTo: spill)
        try write(result, input: input, config: config, metric: metric, writePairs: writePairs, source: source, out: out, kept: kept,
                  content: content)
        return result
    }

    /// Whether dedup of `source` spills its vectors (its estimate is above the memory limit);
    /// refused in one line when its state alone is above it.
    static func spills(_ source: VectorSource, config: DedupConfig) throws -> Bool {
        try OutputWriting.spills(Dedup.memoryPlan(rows: source.rows, dimension: source.dimension, config: config), limit: config.memoryLimit) { plan, limit in
            "\(source.reference): dedup of \(source.rows) x \(source.dimension) needs about \(formatBytes(plan.state)) besides the vectors and pairs (partition rankings, guest lists, groups), above the memory limit of \(formatBytes(limit)) (--memory-limit, job key memory_limit; default half of RAM)"
        }
    }

    /// Writes a result's masks (and pairs, and the kept rows) and commits the outputs together.
    static func write(
        _ result: DedupResult, input: DatasetReference, config: DedupConfig, metric: Metric, writePairs: Bool, source: VectorSource,
        out: AtomicOutputFile, kept: AtomicOutputFile?, content: Provenance.Content? = nil
    ) throws {
        let file = out.file
        let primary = result.byThreshold[0]
        try file.write("dedup/group", primary.group, shape: [result.rows])
        try file.write("dedup/keep", primary.keep, shape: [result.rows])
        try Provenance.stamp(file, from: input, artifact: "dedup", settings: config, threads: config.threads, content: content)
        if result.byThreshold.count > 1 {
            for (index, groups) in result.byThreshold.enumerated() {
                let group = "dedup/by_threshold/\(index)"
                try file.write("\(group)/group", groups.group, shape: [result.rows])
                try file.write("\(group)/keep", groups.keep, shape: [result.rows])
                try file.setAttribute("threshold", .double(groups.threshold), on: group)
                try file.setAttribute("pairs", .int(Int64(groups.pairs)), on: group)
                try file.setAttribute("groups", .int(Int64(groups.groupCount)), on: group)
                try file.setAttribute("rows_removed", .int(Int64(groups.rowsRemoved)), on: group)
            }
        }
        if writePairs {
            let flat = result.pairs.flatMap { [$0.0, $0.1] }
            try file.write("dedup/pairs", flat, shape: [result.pairs.count, 2])
            try file.write("dedup/pair_distances", result.pairDistances, shape: [result.pairs.count])
        }
        let group = "dedup"
        try file.setAttribute("threshold", .double(primary.threshold), on: group)
        try file.setAttribute("thresholds", .doubles(result.byThreshold.map(\.threshold)), on: group)
        try file.setAttribute("metric", .string(metric.rawValue), on: group)
        try file.setAttribute("mode", .string(config.mode.rawValue), on: group)
        try file.setAttribute("keep_policy", .string(config.keep.rawValue), on: group)
        if result.spilledBytes > 0 { try file.setAttribute("spilled_bytes", .int(Int64(result.spilledBytes)), on: group) }
        try file.setAttribute("rows", .int(Int64(result.rows)), on: group)
        try file.setAttribute("pairs", .int(Int64(primary.pairs)), on: group)
        try file.setAttribute("groups", .int(Int64(primary.groupCount)), on: group)
        try file.setAttribute("rows_removed", .int(Int64(primary.rowsRemoved)), on: group)
        try file.setAttribute("source", .string(input.description), on: group)
        if let recall = result.sampledPairRecall { try file.setAttribute("sampled_pair_recall", .double(recall), on: group) }

        if let kept {
            try writeKeptRows(source: source, keep: primary.keep, threshold: primary.threshold, to: kept.file)
        }
        try AtomicOutputFile.commit([out] + (kept.map { [$0] } ?? []))
    }

    /// A new ann-benchmarks-layout file: the kept rows of `train` (in order), `test` and the
    /// root attributes unchanged, and `original_ids` mapping each kept row to its old id. The
    /// source's `neighbors`/`distances` refer to the old ids, so they are not copied: compute
    /// them again with `simjob groundtruth`.
    static func writeKeptRows(source: VectorSource, keep: [UInt8], threshold: Double, to file: HDF5File) throws {
        let keptIDs = keep.indices.filter { keep[$0] == 1 }
        for (name, value) in try source.file.attributes() { try file.setAttribute(name, value) }
        try file.setAttribute("dedup_threshold", .double(threshold))
        try file.setAttribute("dedup_source", .string(source.reference.description))
        let d = source.dimension
        let train = try file.createDataset("train", type: .float32, shape: [keptIDs.count, d])
        var written = 0
        let block = FloatMatrix(rows: min(65_536, max(keptIDs.count, 1)), columns: d)
        var filled = 0
        try source.forEachBlock(blockRows: 65_536) { range, rows in
            for id in range where keep[id] == 1 {
                block.row(filled).update(from: rows + (id - range.lowerBound) * d, count: d)
                filled += 1
                if filled == block.rows {
                    try train.writeRows(written, filled, from: block.pointer)
                    written += filled
                    filled = 0
                }
            }
        }
        if filled > 0 { try train.writeRows(written, filled, from: block.pointer) }
        try file.write("original_ids", keptIDs.map { Int32($0) }, shape: [keptIDs.count])
        if source.reference.dataset != "test" && source.file.isDataset("test") {
            try OutputWriting.copyDataset("test", from: source.file, to: file)
        }
    }

    /// The terminal summary.
    public static func summary(_ result: DedupResult, output: String) -> String {
        var lines: [String] = []
        lines.append(String(format: "dedup (%@, %@%@): %d rows in %.2f s", result.mode.rawValue, result.metric.rawValue,
                            result.mode == .fast ? ", \(result.partitions) partitions" : "", result.rows, result.seconds))
        if let recall = result.sampledPairRecall { lines.append(String(format: "  pair recall against exact on a sample: %.5f", recall)) }
        if result.spilledBytes > 0 { lines.append("  vectors spilled to disk (\(formatBytes(result.spilledBytes))), above the memory limit") }
        lines.append("  threshold      pairs     groups  rows removed  kept")
        for groups in result.byThreshold {
            lines.append(String(format: "  %9.4g  %9d  %9d  %12d  %d", groups.threshold, groups.pairs, groups.groupCount,
                                groups.rowsRemoved, result.rows - groups.rowsRemoved))
        }
        let primary = result.byThreshold[0]
        if !primary.largestGroups.isEmpty {
            lines.append("  largest groups at \(primary.threshold): " + primary.largestGroups.prefix(5).map { "#\($0.id) (\($0.size) rows)" }.joined(separator: ", "))
            let histogram = primary.sizeHistogram.enumerated().filter { $0.offset >= 2 && $0.element > 0 }
            let shown = histogram.prefix(8).map { "\($0.offset): \($0.element)" }.joined(separator: ", ")
            lines.append("  group sizes (size: groups): " + shown + (histogram.count > 8 ? ", ..." : ""))
        }
        lines.append("  -> \(output)")
        return lines.joined(separator: "\n")
    }
}
