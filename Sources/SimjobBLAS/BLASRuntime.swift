import CBLAS
import Foundation

/// What OpenBLAS is doing on this machine, and the means to keep it on its fastest kernels.
///
/// OpenBLAS picks its kernels ("core") once, when the library loads, from the CPU's model number
/// or from the `OPENBLAS_CORETYPE` environment variable, before any of simjob's code runs. Both
/// can pick slow kernels: some machines preset `OPENBLAS_CORETYPE=Haswell` on AVX-512 CPUs, and a
/// library older than the CPU does not know its model and falls back to SSE kernels. The
/// executable therefore calls `relaunchIfNeeded` first thing: when the loaded core is weaker than
/// the one `CoreChoice` picks from the CPU's flags, it re-executes itself once with
/// `OPENBLAS_CORETYPE` set to that core.
public enum BLASRuntime {
    /// Environment variable that keeps a forced `OPENBLAS_CORETYPE` as it is (simjob then warns).
    public static let keepCoreTypeVariable = "SIMJOB_KEEP_OPENBLAS_CORETYPE"
    /// Set in the re-executed process, so it never relaunches twice.
    public static let relaunchedVariable = "SIMJOB_BLAS_RELAUNCHED"
    static let replacedCoreTypeVariable = "SIMJOB_REPLACED_OPENBLAS_CORETYPE"
    static let loadedCoreVariable = "SIMJOB_BLAS_FIRST_CORE"

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

    /// Whether the loaded OpenBLAS contains a core (upper case, as `OPENBLAS_CORETYPE` spells it).
    /// A DYNAMIC_ARCH build exports one `gotoblas_<CORE>` table per core it was built with.
    public static func libraryHasCore(_ core: String) -> Bool {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_" + core.uppercased()) != nil
    }

    /// The core simjob wants on this CPU with the loaded library (nil: leave OpenBLAS's choice).
    public static let choice: CoreChoice? = CoreChoice.choose(for: CPUFeatures.current, libraryHas: libraryHasCore)

    /// The `OPENBLAS_CORETYPE` value simjob replaced when it relaunched itself, if it did.
    public static var replacedCoreType: String? {
        ProcessInfo.processInfo.environment[replacedCoreTypeVariable]
    }

    /// The core OpenBLAS had loaded before simjob relaunched itself, if it did.
    public static var firstLoadedCore: String? {
        ProcessInfo.processInfo.environment[loadedCoreVariable]
    }

    /// One sentence on why the loaded core is the one in use, for `info --system` and logs.
    public static var coreExplanation: String {
        let environment = ProcessInfo.processInfo.environment
        let loaded = coreName
        if let first = firstLoadedCore, let choice {
            let cause = replacedCoreType.map { "the environment's OPENBLAS_CORETYPE=\($0)" } ?? "the library's own detection"
            return "chosen by simjob from the \(choice.reason); \(cause) had loaded '\(first)', so simjob restarted with OPENBLAS_CORETYPE=\(choice.core)"
        }
        if let forced = environment["OPENBLAS_CORETYPE"], !forced.isEmpty {
            if let choice, CoreChoice.rank(loaded) < CoreChoice.rank(choice.core) {
                return "forced by OPENBLAS_CORETYPE=\(forced) and kept because \(keepCoreTypeVariable) is set (simjob would choose \(CoreChoice.displayName(choice.core)) from the \(choice.reason))"
            }
            return "OPENBLAS_CORETYPE=\(forced) is set and is at least as fast as simjob's choice"
                + (choice.map { " (\(CoreChoice.displayName($0.core)), from the \($0.reason))" } ?? "")
        }
        if let choice {
            return "the library's own detection, as good as simjob's choice (\(CoreChoice.displayName(choice.core)), from the \(choice.reason))"
        }
        return "the library's own detection (simjob has no better choice for this CPU)"
    }

    /// A warning when OpenBLAS runs slower kernels than the CPU supports; nil when all is well.
    /// Commands log it (never on the line of an error).
    public static var slowKernelWarning: String? {
        guard let choice, CoreChoice.rank(coreName) < CoreChoice.rank(choice.core) else { return nil }
        let environment = ProcessInfo.processInfo.environment
        let cause: String
        if let forced = environment["OPENBLAS_CORETYPE"], !forced.isEmpty, environment[keepCoreTypeVariable] != nil {
            cause = "OPENBLAS_CORETYPE=\(forced) is kept because \(keepCoreTypeVariable) is set; unset that to let simjob choose"
        } else {
            cause = "simjob could not restart itself with OPENBLAS_CORETYPE=\(choice.core)"
        }
        return "OpenBLAS runs '\(coreName)' kernels on a CPU that supports '\(CoreChoice.displayName(choice.core))' "
            + "(\(choice.reason)); sgemm may be several times slower: \(cause)"
    }

    /// Re-executes the current process once, before any work, when OpenBLAS was loaded with
    /// settings that cost speed: a core weaker than `choice` (forced by the environment or picked
    /// by the library's own detection; `OPENBLAS_CORETYPE` is set to the chosen core), or a thread
    /// pool of its own (`OPENBLAS_NUM_THREADS` is set to 1: the engine runs one single-threaded BLAS
    /// call per Dispatch worker, and an idle OpenBLAS pool spins in sched_yield for its first
    /// tenth of a second, which measured 20 % of a short search). Returns normally when nothing
    /// needs doing or re-executing fails; on success it does not return.
    public static func relaunchIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        guard environment[relaunchedVariable] == nil else { return }
        var changed = false
        let forced = environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 }
        let loaded = coreName
        if let choice, CoreChoice.rank(loaded) < CoreChoice.rank(choice.core),
           forced == nil || environment[keepCoreTypeVariable] == nil {
            if let forced { setenv(replacedCoreTypeVariable, forced, 1) }
            setenv(loadedCoreVariable, loaded, 1)
            setenv("OPENBLAS_CORETYPE", choice.core, 1)
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
        // execv returns only on failure: carry on as loaded (commands log a warning if slow).
        if let forced { setenv("OPENBLAS_CORETYPE", forced, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        unsetenv(replacedCoreTypeVariable)
        unsetenv(loadedCoreVariable)
    }
}
