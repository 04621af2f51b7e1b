import Foundation
import SimjobAlgorithms
import SimjobHDF5

/// Writing an evaluation: the report group, ann-benchmarks result files, a table, a plot.
public enum EvaluationOutput {
    /// Group `evaluation` of the report: one row per setting.
    public static func writeReport(_ report: EvaluationReport, to file: HDF5File) throws {
        let rows = report.rows
        let count = rows.count
        try file.write("evaluation/nprobe", rows.map { Int32($0.nprobe) }, shape: [count])
        try file.write("evaluation/ef", rows.map { Int32($0.ef) }, shape: [count])
        try file.write("evaluation/probes", rows.map { Int32($0.probes) }, shape: [count])
        try file.write("evaluation/search_k", rows.map { Int32($0.searchK) }, shape: [count])
        try file.write("evaluation/refine", rows.map { Int32($0.refine) }, shape: [count])
        try file.write("evaluation/recall", rows.map(\.recall), shape: [count])
        try file.write("evaluation/epsilon_recall", rows.map(\.epsilonRecall), shape: [count])
        try file.write("evaluation/id_recall", rows.map(\.idRecall), shape: [count])
        try file.write("evaluation/qps", rows.map(\.qps), shape: [count])
        try file.write("evaluation/best_search_seconds", rows.map(\.bestSearchSeconds), shape: [count])
        try file.write("evaluation/p50_ms", rows.map(\.p50Milliseconds), shape: [count])
        try file.write("evaluation/p95_ms", rows.map(\.p95Milliseconds), shape: [count])
        try file.write("evaluation/p99_ms", rows.map(\.p99Milliseconds), shape: [count])
        try file.write("evaluation/candidates", rows.map(\.candidates), shape: [count])
        try file.write("evaluation/pareto", rows.map { UInt8($0.pareto ? 1 : 0) }, shape: [count])
        // Per row, for a sweep over several indexes: the index's build time and size.
        try file.write("evaluation/build_seconds", rows.map(\.buildSeconds), shape: [count])
        try file.write("evaluation/index_size_bytes", rows.map { Int64($0.indexSizeBytes) }, shape: [count])
        let group = "evaluation"
        try file.setAttribute("algorithm", .strings(rows.map(\.algorithm)), on: group)
        try file.setAttribute("name", .strings(rows.map(\.name)), on: group)
        try file.setAttribute("row_index", .strings(rows.map(\.index)), on: group)
        try file.setAttribute("dataset", .string(report.dataset), on: group)
        try file.setAttribute("distance", .string(report.metric.rawValue), on: group)
        try file.setAttribute("k", .int(Int64(report.k)), on: group)
        try file.setAttribute("queries", .int(Int64(report.queries)), on: group)
        try file.setAttribute("build_seconds", .double(report.buildSeconds), on: group)
        try file.setAttribute("index_size_bytes", .int(Int64(report.indexSizeBytes)), on: group)
        try file.setAttribute("index", .string(report.indexDescription), on: group)
    }

    /// Result files in ann-benchmarks' own layout, `DIR/<dataset>/<k>/<algo>/<name>.hdf5`
    /// (batch runs go under `<algo>-batch`, as ann-benchmarks stores them), so its `plot.py`
    /// and `data_export.py` read them. Returns the paths written.
    ///
    /// Root attributes: `algo`, `name`, `dataset`, `distance`, `count` (k), `run_count`,
    /// `batch_mode`, `best_search_time` (seconds per query), `build_time` (seconds),
    /// `index_size` (kB, as ann-benchmarks records memory use), `candidates`, `expect_extra`.
    /// Datasets: `times` float32 [q] (per-query time of the fastest batch), `neighbors` int32
    /// [q, k] (-1 where missing), `distances` float32 [q, k] (recomputed, ann-benchmarks
    /// conventions).
    /// Returns the staged files (not yet committed: the caller commits them with its other
    /// outputs, so a failure leaves none of them).
    public static func writeANNBenchmarksResults(_ report: EvaluationReport, runs: Int, to directory: String) throws -> [AtomicOutputFile] {
        var staged: [AtomicOutputFile] = []
        for row in report.rows {
            let algorithmFolder = row.algorithm + "-batch"
            let folder = [directory, report.dataset, String(report.k), algorithmFolder].joined(separator: "/")
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw SimjobError("\(folder): cannot create the ann-benchmarks results folder (is \(directory) a file, or not writable?)")
            }
            let name = row.algorithm == "simjob-exact" ? "exact" : row.ef > 0 ? "ef_\(row.ef)" : row.probes > 0 ? "probes_\(row.probes)"
                : row.searchK > 0 ? "search_k_\(row.searchK)"
                : row.algorithm == "simjob-lsh" ? "hamming_refine_\(row.refine)" : "nprobe_\(row.nprobe)_refine_\(row.refine)"
            // Several indexes of one family would share names: each file then starts with its
            // index's setting name.
            let indexes = Set(report.rows.map(\.index).filter { !$0.isEmpty })
            let prefix = indexes.count > 1 && row.algorithm != "simjob-exact"
                ? String(row.name.map { $0.isLetter || $0.isNumber ? $0 : "_" }) + "_" : ""
            let path = folder + "/" + prefix + name + ".hdf5"
            let out = try AtomicOutputFile(path)
            let file = out.file
            let perQuery = row.bestSearchSeconds / Double(max(report.queries, 1))
            try file.setAttribute("algo", .string(row.algorithm), on: "/")
            let setting = row.ef > 0 ? "(ef=\(row.ef))" : row.probes > 0 ? "(probes=\(row.probes))"
                : row.searchK > 0 ? "(search_k=\(row.searchK))"
                : row.algorithm == "simjob-lsh" ? "(hamming,refine=\(row.refine))" : "(nprobe=\(row.nprobe),refine=\(row.refine))"
            try file.setAttribute("name", .string(row.name + setting))
            try file.setAttribute("dataset", .string(report.dataset))
            try file.setAttribute("distance", .string(report.metric.rawValue))
            try file.setAttribute("count", .int(Int64(report.k)))
            try file.setAttribute("run_count", .int(Int64(runs)))
            try file.setAttribute("batch_mode", .int(1))
            try file.setAttribute("best_search_time", .double(perQuery))
            try file.setAttribute("build_time", .double(report.buildSeconds))
            try file.setAttribute("index_size", .double(Double(report.indexSizeBytes) / 1024))
            try file.setAttribute("candidates", .double(row.candidates))
            try file.setAttribute("expect_extra", .int(0))
            try file.write("times", [Float](repeating: Float(perQuery), count: report.queries), shape: [report.queries])
            try file.write("neighbors", row.neighbors, shape: [report.queries, report.k])
            try file.write("distances", row.distances, shape: [report.queries, report.k])  // +inf where missing, as ann-benchmarks pads
            staged.append(out)
        }
        return staged
    }

    /// A fixed-width summary table.
    public static func table(_ report: EvaluationReport) -> String {
        var lines = [
            "\(report.dataset): \(report.queries) queries, k=\(report.k), \(report.metric); \(report.indexDescription), built in \(String(format: "%.2f", report.buildSeconds)) s, \(formatBytes(report.indexSizeBytes))",
            "  algorithm      nprobe refine     ef probes search_k   recall  eps-recall  id-recall        QPS  p50 ms  p95 ms  p99 ms  candidates  pareto",
        ]
        func milliseconds(_ value: Double) -> String { value.isNaN ? "     -" : String(format: "%6.3f", value) }
        for row in report.rows {
            let algorithm = row.algorithm.replacingOccurrences(of: "simjob-", with: "")
            lines.append("  " + algorithm.padding(toLength: 13, withPad: " ", startingAt: 0) + String(
                format: " %6d %6d %6d %6d %8d  %7.4f     %7.4f    %7.4f  %9.0f  %@  %@  %@  %10.0f  %@",
                row.nprobe, row.refine, row.ef, row.probes, row.searchK, row.recall, row.epsilonRecall, row.idRecall, row.qps,
                milliseconds(row.p50Milliseconds), milliseconds(row.p95Milliseconds), milliseconds(row.p99Milliseconds),
                row.candidates, row.pareto ? "*" : ""))
        }
        return lines.joined(separator: "\n")
    }
}
