import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations
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

    @Option(help: "Seconds each sgemm measurement of --system runs (0.05 to 60).")
    var sgemmSeconds = 0.6

    @Flag(help: .hidden) var sgemmProbe = false
    @Flag(help: .hidden) var blasCore = false

    func validate() throws {
        if file == nil && !system && !sgemmProbe && !blasCore { throw ValidationError("give a FILE, or --system") }
        // --sgemm-seconds and --block-rows are bounded with every other option (OptionBounds).
    }

    func run() throws {
        if blasCore {
            // The OPENBLAS_CORETYPE simjob would run with here (empty: the library's own choice).
            printLine(BLASRuntime.choice?.core ?? "")
            return
        }
        if sgemmProbe { printProbe(); return }
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
        let cpu = CPUFeatures.current
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let shown = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx_vnni"]
        printLine("CPU: \(cpu.modelName) (\(cpu.vendor), family \(cpu.family), model \(cpu.model)), \(cores) cores")
        printLine("  flags: " + shown.filter(cpu.flags.contains).joined(separator: " "))
        let core = BLASRuntime.coreName
        printLine("OpenBLAS: core \(core); \(BLASRuntime.configuration)")
        printLine("  why: \(BLASRuntime.coreExplanation)")
        if let warning = BLASRuntime.slowKernelWarning { printLine("  warning: \(warning)") }
        let one = SystemReport.measureSgemm(threads: 1, seconds: sgemmSeconds)
        let all = cores > 1 ? SystemReport.measureSgemm(threads: cores, seconds: sgemmSeconds) : one
        printLine(String(format: "sgemm (4096 x 4096 x 128 per worker), core %@: %.0f GFLOP/s on 1 thread, %.0f GFLOP/s on %d threads", core, one, all, cores))
        // The library's own choice, measured in a child process that loads OpenBLAS without
        // OPENBLAS_CORETYPE, so the gain of simjob's choice is visible in one run.
        if let probe = SystemReport.probeLibraryDefault(seconds: sgemmSeconds) {
            if probe.core.lowercased() == core.lowercased() {
                printLine("  the library's own detection picks the same core")
            } else {
                printLine(String(format: "  the library's own detection picks %@: %.0f GFLOP/s on 1 thread (the core in use: %.2fx that)", probe.core, probe.gflops, one / max(probe.gflops, 1e-9)))
            }
        }
        // The exact engines' product backends (--gemm), measured the way `auto` measures them.
        printLine("products of the exact engines (--gemm; 1024 x 512 tiles, 1 thread, GFLOP/s; auto takes a format at \(Int(GEMMCalibration.requiredSpeedup))x fp32, from d=\(GEMMCalibration.minimumScanDimension) in scans and d=\(GEMMCalibration.minimumAssignmentDimension) in assignment):")
        for dimension in [128, 384, 784] {
            let measured = GEMMCalibration.measurement(dimension: dimension, fresh: true)
            func rate(_ value: Double?, _ implementation: String?) -> String {
                value.map { String(format: "%.0f (%@)", $0, implementation ?? "?") } ?? "unavailable"
            }
            printLine(String(format: "  d=%d: fp32 %.0f, int8 %@, bf16 %@ -> auto: %@", dimension, measured.fp32,
                             rate(measured.int8, measured.int8Implementation), measured.bf16 == nil ? "not measured (no AMX)" : rate(measured.bf16, measured.bf16Implementation),
                             measured.automaticFormat?.rawValue ?? "fp32"))
        }
        printLine(ReducedGEMM.int8Levels == 127
                  ? "  int8 values in +-127: oneDNN sums them exactly on this CPU (checked at start-up)"
                  : "  int8 values in +-\(ReducedGEMM.int8Levels): oneDNN's kernel here adds byte pairs in 16 bits with saturation (no VNNI), so a coarser grid keeps every sum exact (checked at start-up)")
        if let file = GEMMCalibration.cacheFile { printLine("  measurements cached in \(file) (auto reads them; info --system measures again)") }
    }

    /// `--sgemm-probe`: the loaded core and its one-thread sgemm rate, as `core=NAME gflops=X`.
    func printProbe() {
        let rate = SystemReport.measureSgemm(threads: 1, seconds: sgemmSeconds)
        printLine(String(format: "core=%@ gflops=%.1f", BLASRuntime.coreName, rate))
    }
}
