import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobBLAS
import SimjobHDF5
import SimjobKernels

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a file's datasets, shapes, element types and attributes, or this machine's BLAS setup.")

    @Argument(help: "An HDF5 file.")
    var file: String?

    @Flag(help: "Show the CPU, the OpenBLAS kernels in use and a measured sgemm rate.")
    var system = false

    @Flag(help: "Read every 2-D dataset by blocks, checking for NaN and infinite values; report peak memory.")
    var check = false

    @Option(help: "Rows per block for --check.")
    var blockRows = 65_536

    func validate() throws {
        if file == nil && !system { throw ValidationError("give a FILE, or --system") }
    }

    func run() throws {
        if system { printSystem() }
        guard let file else { return }
        let handle = try HDF5File.open(file)
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        printLine("\(file) (HDF5, \(formatBytes(size)))")
        let attributes = try handle.attributes()
        if !attributes.isEmpty {
            printLine("  attributes:")
            for (name, value) in attributes { printLine("    \(name) = \(value)") }
        }
        printLine("  datasets:")
        let paths = handle.datasetPaths()
        let width = paths.map(\.count).max() ?? 0
        var groupsShown: Set<String> = []
        for path in paths {
            let group = path.split(separator: "/").dropLast().joined(separator: "/")
            if !group.isEmpty, groupsShown.insert(group).inserted {
                let groupAttributes = try handle.attributes(of: group)
                if !groupAttributes.isEmpty {
                    printLine("    \(group)/  " + groupAttributes.map { "\($0.0)=\($0.1)" }.joined(separator: ", "))
                }
            }
            let dataset = try handle.dataset(path)
            let name = path.padding(toLength: width, withPad: " ", startingAt: 0)
            printLine("    \(name)  \(dataset.elementType.description.padding(toLength: 8, withPad: " ", startingAt: 0)) \(dataset.shapeDescription)")
            for (key, value) in try dataset.attributes() { printLine("      @\(key) = \(value)") }
        }
        if let value = try handle.attribute("distance")?.stringValue {
            let metric = Metric(name: value).map { "\($0)" } ?? "unsupported by simjob"
            printLine("  metric: \(value) (\(metric))")
        } else {
            printLine("  metric: none recorded (pass --metric to commands)")
        }
        if check { try checkDatasets(file, paths: paths, handle: handle) }
    }

    func checkDatasets(_ file: String, paths: [String], handle: HDF5File) throws {
        for path in paths {
            let dataset = try handle.dataset(path)
            guard dataset.shape.count == 2, dataset.elementType.isNumeric, !dataset.elementType.isInteger else { continue }
            let source = try VectorSource(DatasetReference(path: file, dataset: path))
            let started = ProgressDisplay.now()
            try source.forEachBlock(blockRows: blockRows) { _, _ in }
            let seconds = ProgressDisplay.now() - started
            let rate = Double(source.floatBytes) / max(seconds, 1e-9) / 1e6
            printLine(String(format: "  check %@: %d rows finite, read in %.2f s (%.0f MB/s as float32)", path, source.rows, seconds, rate))
        }
        printLine("  peak memory: \(formatBytes(ProcessMemory.peakResidentBytes)) (peak_rss_bytes=\(ProcessMemory.peakResidentBytes))")
    }

    func printSystem() {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        printLine("CPU: \(BLASRuntime.cpuModel), \(cores) cores, AVX-512: \(BLASRuntime.cpuHasAVX512 ? "yes" : "no")")
        printLine("OpenBLAS: core \(BLASRuntime.coreName); \(BLASRuntime.configuration)")
        if let replaced = BLASRuntime.replacedCoreType {
            printLine("  (the environment forced OPENBLAS_CORETYPE=\(replaced); simjob restarted without it to use the CPU's best kernels)")
        }
        if let warning = BLASRuntime.slowKernelWarning { printLine(warning) }
        let one = SystemReport.measureSgemm(threads: 1)
        let all = cores > 1 ? SystemReport.measureSgemm(threads: cores) : one
        printLine(String(format: "sgemm (4096 x 4096 x 128 per worker): %.0f GFLOP/s on 1 thread, %.0f GFLOP/s on %d threads", one, all, cores))
    }
}
