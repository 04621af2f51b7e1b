import Foundation

/// The CPU as OpenBLAS's kernel choice needs to see it: vendor, family, model and feature flags
/// (the names of the `flags` line of Linux's `/proc/cpuinfo`, e.g. `avx512f`, `avx512_bf16`).
public struct CPUFeatures: Sendable, Equatable {
    public var vendor: String
    public var family: Int
    public var model: Int
    public var modelName: String
    public var flags: Set<String>

    public init(vendor: String, family: Int, model: Int, modelName: String = "", flags: Set<String>) {
        self.vendor = vendor
        self.family = family
        self.model = model
        self.modelName = modelName
        self.flags = flags
    }

    public var isAMD: Bool { vendor == "AuthenticAMD" || vendor == "HygonGenuine" }

    /// AVX-512 Foundation plus the BW, VL and DQ extensions that OpenBLAS's SkylakeX kernels use.
    public var hasAVX512Kernels: Bool { flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) }

    /// Parses the first processor's entry of a `/proc/cpuinfo` text.
    public init(cpuinfo text: String) {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty, !fields.isEmpty { break }
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        self.init(
            vendor: fields["vendor_id"] ?? "unknown",
            family: Int(fields["cpu family"] ?? "") ?? 0,
            model: Int(fields["model"] ?? "") ?? 0,
            modelName: fields["model name"] ?? "unknown",
            flags: Set((fields["flags"] ?? "").split(separator: " ").map(String.init)))
    }

    /// This machine's CPU (Linux). Empty flags where `/proc/cpuinfo` cannot be read.
    public static let current: CPUFeatures = {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return CPUFeatures(cpuinfo: text)
    }()
}

/// Which OpenBLAS kernel family ("core") to run on a CPU, decided from the CPU's instruction set
/// rather than its model number.
///
/// OpenBLAS's own detection matches CPU model numbers it knows: a library older than the CPU
/// (Debian's 0.3.21 on a 5th-generation Xeon, family 6 model 207) falls back to its generic
/// `Prescott` kernels and runs sgemm 3-5x slower than its AVX-512 kernels would on the same CPU.
/// The instruction set says what the CPU can run whatever its model:
///
/// | CPU flags                                   | core, best first                          |
/// |---------------------------------------------|-------------------------------------------|
/// | AVX-512 F/BW/VL/DQ + AVX512-BF16 + AMX-BF16 | SapphireRapids, Cooperlake, SkylakeX      |
/// | AVX-512 F/BW/VL/DQ + AVX512-BF16            | Cooperlake, SkylakeX                      |
/// | AVX-512 F/BW/VL/DQ                          | SkylakeX                                  |
/// | AVX2 + FMA (AMD)                            | Zen, Haswell                              |
/// | AVX2 + FMA                                  | Haswell                                   |
/// | AVX                                         | Sandybridge                               |
/// | older                                       | (the library's own choice)                |
///
/// The first core of the list that the loaded library contains is chosen. (OpenBLAS's fp32 sgemm
/// is the same code in SapphireRapids and Cooperlake; the newer core adds bf16 routines.)
public struct CoreChoice: Sendable, Equatable {
    /// The `OPENBLAS_CORETYPE` value, upper case as OpenBLAS spells its cores (`COOPERLAKE`).
    public var core: String
    /// Why, in a few words: the flags that decided.
    public var reason: String

    public init(core: String, reason: String) {
        self.core = core
        self.reason = reason
    }

    /// Every core a CPU can run, best first, with the reason; empty for CPUs older than AVX.
    public static func candidates(for cpu: CPUFeatures) -> (cores: [String], reason: String) {
        let flags = cpu.flags
        var cores: [String] = []
        var reasons: [String] = []
        if cpu.hasAVX512Kernels {
            if flags.contains("avx512_bf16") {
                if flags.contains("amx_bf16") {
                    cores.append("SAPPHIRERAPIDS")
                    reasons.append("amx_bf16")
                }
                cores.append("COOPERLAKE")
                reasons.append("avx512_bf16")
            }
            cores.append("SKYLAKEX")
            reasons.append("avx512f/bw/vl/dq")
        }
        if flags.contains("avx2") && flags.contains("fma") {
            cores += cpu.isAMD ? ["ZEN", "HASWELL"] : ["HASWELL"]
            if reasons.isEmpty { reasons.append(cpu.isAMD ? "avx2+fma on AMD" : "avx2+fma") }
        }
        if flags.contains("avx") {
            cores.append("SANDYBRIDGE")
            if reasons.isEmpty { reasons.append("avx") }
        }
        let reason = reasons.isEmpty ? "no AVX" : "CPU flags " + reasons.reversed().joined(separator: " + ")
        return (cores, reason)
    }

    /// The best core for `cpu` among those the library has (`libraryHas` answers for an upper-case
    /// core name); nil when the CPU predates AVX or the library has none of its cores.
    public static func choose(for cpu: CPUFeatures, libraryHas: (String) -> Bool) -> CoreChoice? {
        let (cores, reason) = candidates(for: cpu)
        guard let core = cores.first(where: libraryHas) else { return nil }
        let best = cores.first!
        let note = core == best ? "" : " (the library has no \(displayName(best)) core)"
        return CoreChoice(core: core, reason: reason + note)
    }

    /// How fast a core's kernels are, as an order: a core of higher rank is never slower on a CPU
    /// that runs both. 0 for names simjob does not know.
    public static func rank(_ core: String) -> Int {
        switch core.uppercased() {
        case "SAPPHIRERAPIDS": return 6
        case "COOPERLAKE": return 5
        case "SKYLAKEX": return 4
        case "HASWELL", "ZEN": return 3
        case "SANDYBRIDGE", "BULLDOZER", "PILEDRIVER", "STEAMROLLER", "EXCAVATOR": return 2
        case "": return 0
        default: return 1  // Prescott, Core2, Nehalem, Barcelona, ...: SSE kernels
        }
    }

    /// `COOPERLAKE` as OpenBLAS names it when loaded (`Cooperlake`).
    public static func displayName(_ core: String) -> String {
        switch core.uppercased() {
        case "SAPPHIRERAPIDS": return "SapphireRapids"
        case "COOPERLAKE": return "Cooperlake"
        case "SKYLAKEX": return "SkylakeX"
        case "HASWELL": return "Haswell"
        case "ZEN": return "Zen"
        case "SANDYBRIDGE": return "Sandybridge"
        default: return core.prefix(1).uppercased() + core.dropFirst().lowercased()
        }
    }

    /// Whether a core name is one of OpenBLAS's AVX-512 kernel families.
    public static func isAVX512(_ core: String) -> Bool { rank(core) >= 4 }
}
