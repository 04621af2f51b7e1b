import CBLAS
import Foundation

/// What OpenBLAS is doing on this machine, and the means to keep it on its fast kernels.
///
/// OpenBLAS picks its kernels ("core") once, when the library loads, from the CPU or from the
/// `OPENBLAS_CORETYPE` environment variable. Some machines preset `OPENBLAS_CORETYPE=Haswell`,
/// which forces the AVX2 kernels on CPUs with AVX-512 and makes sgemm about 3x slower. Because
/// the choice is made before any of simjob's code runs, the executable calls
/// `relaunchIfNeeded` first thing: it re-executes itself once without the
/// variable so OpenBLAS detects the CPU's best kernels.
public enum BLASRuntime {
    /// Environment variable that keeps a forced `OPENBLAS_CORETYPE` as it is (simjob then warns).
    public static let keepCoreTypeVariable = "SIMJOB_KEEP_OPENBLAS_CORETYPE"
    static let relaunchedVariable = "SIMJOB_BLAS_RELAUNCHED"
    static let replacedCoreTypeVariable = "SIMJOB_REPLACED_OPENBLAS_CORETYPE"

    /// The kernel family OpenBLAS is using (`Cooperlake`, `SkylakeX`, `Haswell`, ...).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build configuration string (version, threading model, max threads).
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config).trimmingCharacters(in: .whitespaces)
    }

    /// Sets OpenBLAS's own thread count. The engine sets 1 and parallelises with Dispatch.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(count))
    }

    /// Whether the CPU supports AVX-512 Foundation, read from /proc/cpuinfo (Linux).
    public static let cpuHasAVX512: Bool = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            return line.split(separator: " ").contains("avx512f")
        }
        return false
    }()

    /// The CPU model line from /proc/cpuinfo.
    public static let cpuModel: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        return "unknown"
    }()

    /// Whether a core name is one of OpenBLAS's AVX-512 kernel families.
    public static func isAVX512Core(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["skylakex", "cooperlake", "sapphirerapids"].contains { lower.contains($0) }
    }

    /// A warning when the CPU has AVX-512 but OpenBLAS runs slower kernels; nil when all is well.
    public static var slowKernelWarning: String? {
        guard cpuHasAVX512, !isAVX512Core(coreName) else { return nil }
        let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""
        return "warning: OpenBLAS runs '\(coreName)' kernels on a CPU with AVX-512\(forced); "
            + "sgemm is up to 3x slower than with its AVX-512 kernels. Unset OPENBLAS_CORETYPE "
            + "or set it to SKYLAKEX."
    }

    /// Re-executes the current process once, before any work, when OpenBLAS was loaded with
    /// settings that cost speed: `OPENBLAS_CORETYPE` forcing non-AVX-512 kernels on an AVX-512
    /// CPU (the variable is dropped so OpenBLAS detects the best kernels), or a thread pool of
    /// its own (`OPENBLAS_NUM_THREADS` is set to 1: the engine runs one single-threaded BLAS
    /// call per Dispatch worker, and an idle OpenBLAS pool spins in sched_yield for its first
    /// tenth of a second, which measured 20 % of a short search). Returns normally when nothing
    /// needs doing or re-executing fails; on success it does not return.
    public static func relaunchIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        guard environment[relaunchedVariable] == nil else { return }
        var changed = false
        if let forced = environment["OPENBLAS_CORETYPE"], !forced.isEmpty,
           environment[keepCoreTypeVariable] == nil,
           cpuHasAVX512, !isAVX512Core(forced), !isAVX512Core(coreName) {
            unsetenv("OPENBLAS_CORETYPE")
            setenv(replacedCoreTypeVariable, forced, 1)
            changed = true
        }
        if environment["OPENBLAS_NUM_THREADS"] != "1" {
            setenv("OPENBLAS_NUM_THREADS", "1", 1)
            changed = true
        }
        guard changed else { return }
        setenv(relaunchedVariable, "1", 1)
        let cArguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", cArguments)
        // execv returns only on failure: carry on as loaded (a warning follows if slow kernels).
        if let forced = ProcessInfo.processInfo.environment[replacedCoreTypeVariable] {
            setenv("OPENBLAS_CORETYPE", forced, 1)
            unsetenv(replacedCoreTypeVariable)
        }
    }

    /// The `OPENBLAS_CORETYPE` value simjob replaced when it relaunched itself, if it did.
    public static var replacedCoreType: String? {
        ProcessInfo.processInfo.environment[replacedCoreTypeVariable]
    }
}
