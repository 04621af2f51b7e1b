import Foundation
import Testing
import SimjobBLAS

/// OpenBLAS's kernels are chosen from the CPU's instruction set, not its model number.
@Suite("BLAS core choice")
struct BLASCoreTests {
    static let avx2: Set<String> = ["sse4_2", "avx", "avx2", "fma"]
    static let avx512: Set<String> = avx2.union(["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"])

    /// Named CPUs with the flags their /proc/cpuinfo shows, and the core each must get when the
    /// library has every core (`full`) and when it is Debian's 0.3.21 (no SapphireRapids).
    static let cpus: [(name: String, cpu: CPUFeatures, full: String?, debian: String?)] = [
        ("AMD Zen 4 (EPYC 9004)", CPUFeatures(vendor: "AuthenticAMD", family: 25, model: 17, flags: avx512.union(["avx512_bf16", "avx512_vnni"])), "COOPERLAKE", "COOPERLAKE"),
        ("AMD Zen 5 (EPYC 9005)", CPUFeatures(vendor: "AuthenticAMD", family: 26, model: 2, flags: avx512.union(["avx512_bf16", "avx512_vnni", "avx_vnni"])), "COOPERLAKE", "COOPERLAKE"),
        ("AMD Zen 2 (EPYC 7002)", CPUFeatures(vendor: "AuthenticAMD", family: 23, model: 49, flags: avx2), "ZEN", "ZEN"),
        ("Intel Skylake-SP", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 85, flags: avx512), "SKYLAKEX", "SKYLAKEX"),
        ("Intel Ice Lake-SP", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 106, flags: avx512.union(["avx512_vnni", "avx512ifma"])), "SKYLAKEX", "SKYLAKEX"),
        ("Intel Sapphire Rapids", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 143, flags: avx512.union(["avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"])), "SAPPHIRERAPIDS", "COOPERLAKE"),
        ("Intel Emerald Rapids", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 207, flags: avx512.union(["avx512_bf16", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni"])), "SAPPHIRERAPIDS", "COOPERLAKE"),
        ("Intel Granite Rapids", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 173, flags: avx512.union(["avx512_bf16", "amx_bf16", "amx_fp16", "amx_int8", "amx_tile"])), "SAPPHIRERAPIDS", "COOPERLAKE"),
        ("Intel Haswell (AVX2 only)", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 63, flags: avx2), "HASWELL", "HASWELL"),
        ("Intel Sandy Bridge (AVX, no AVX2)", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 45, flags: ["sse4_2", "avx"]), "SANDYBRIDGE", "SANDYBRIDGE"),
        ("Intel Nehalem (no AVX)", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 26, flags: ["sse4_2"]), nil, nil),
        // AVX512F alone (Knights Landing has no BW/VL): not enough for the SkylakeX kernels.
        ("Intel Knights Landing", CPUFeatures(vendor: "GenuineIntel", family: 6, model: 87, flags: avx2.union(["avx512f", "avx512cd"])), "HASWELL", "HASWELL"),
    ]

    static let debianCores: Set<String> = ["PRESCOTT", "SANDYBRIDGE", "HASWELL", "ZEN", "SKYLAKEX", "COOPERLAKE"]

    @Test("each CPU gets the best core its flags allow, among the library's cores", arguments: 0..<cpus.count)
    func choice(index: Int) {
        let entry = Self.cpus[index]
        let full = CoreChoice.choose(for: entry.cpu) { _ in true }
        let debian = CoreChoice.choose(for: entry.cpu) { Self.debianCores.contains($0) }
        #expect(full?.core == entry.full, "\(entry.name): \(String(describing: full))")
        #expect(debian?.core == entry.debian, "\(entry.name) with Debian's library: \(String(describing: debian))")
    }

    @Test("a library without a core falls back to the next one, and says so")
    func fallback() {
        let zen2 = Self.cpus[2].cpu
        let choice = CoreChoice.choose(for: zen2) { $0 != "ZEN" }
        #expect(choice?.core == "HASWELL")
        #expect(choice?.reason.contains("no Zen core") == true, "\(String(describing: choice))")
        #expect(CoreChoice.choose(for: zen2) { _ in false } == nil)
    }

    @Test("core ranks order the kernel families")
    func ranks() {
        #expect(CoreChoice.rank("Prescott") < CoreChoice.rank("Haswell"))
        #expect(CoreChoice.rank("Haswell") == CoreChoice.rank("ZEN"))
        #expect(CoreChoice.rank("Haswell") < CoreChoice.rank("SkylakeX"))
        #expect(CoreChoice.rank("SkylakeX") < CoreChoice.rank("Cooperlake"))
        #expect(CoreChoice.isAVX512("Cooperlake") && !CoreChoice.isAVX512("Zen"))
    }

    @Test("/proc/cpuinfo text is parsed from the first processor's entry")
    func parsing() {
        let text = """
            processor\t: 0
            vendor_id\t: GenuineIntel
            cpu family\t: 6
            model\t\t: 207
            model name\t: INTEL(R) XEON(R) PLATINUM 8581C CPU @ 2.30GHz
            flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16 amx_bf16

            processor\t: 1
            vendor_id\t: SomethingElse
            flags\t\t: fpu
            """
        let cpu = CPUFeatures(cpuinfo: text)
        #expect(cpu.vendor == "GenuineIntel" && cpu.family == 6 && cpu.model == 207)
        #expect(cpu.modelName.hasPrefix("INTEL(R) XEON(R)"))
        #expect(cpu.hasAVX512Kernels && cpu.flags.contains("amx_bf16") && !cpu.flags.contains("fpu ") )
        #expect(CoreChoice.choose(for: cpu) { Self.debianCores.contains($0) }?.core == "COOPERLAKE")
    }

    /// The core `info --system` reports in a fresh process, under an environment.
    func reportedCore(_ environment: [String: String]) throws -> (core: String, output: String) {
        let result = try runProgram(simjobPath, ["info", "--system", "--sgemm-seconds", "0.05"], environment: environment)
        #expect(result.status == 0, Comment(rawValue: result.stderr))
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("OpenBLAS: core ") } ?? ""
        let core = line.dropFirst("OpenBLAS: core ".count).split(separator: ";").first.map(String.init) ?? ""
        return (core, result.stdout)
    }

    @Test("on this machine simjob runs the core the CPU's flags call for, whatever the environment forced")
    func thisMachine() throws {
        let cpu = CPUFeatures.current
        let expected = try #require(CoreChoice.choose(for: cpu, libraryHas: BLASRuntime.libraryHasCore),
                                    "this CPU has no AVX: the suite needs an x86-64 machine with AVX")
        var base = ProcessInfo.processInfo.environment
        base["OPENBLAS_CORETYPE"] = nil
        base[BLASRuntime.keepCoreTypeVariable] = nil
        base[BLASRuntime.relaunchedVariable] = nil
        var forced = base
        forced["OPENBLAS_CORETYPE"] = "Prescott"
        for environment in [base, forced] {
            let (core, output) = try reportedCore(environment)
            #expect(CoreChoice.rank(core) >= CoreChoice.rank(expected.core), "expected \(expected.core), got \(core):\n\(output)")
            if cpu.hasAVX512Kernels { #expect(CoreChoice.isAVX512(core), "an AVX-512 CPU runs \(core):\n\(output)") }
            #expect(!output.contains("warning"), Comment(rawValue: output))
        }
        // The opt-out keeps a forced core, and says so in a warning.
        var kept = forced
        kept[BLASRuntime.keepCoreTypeVariable] = "1"
        let (core, output) = try reportedCore(kept)
        #expect(core == "Prescott", Comment(rawValue: output))
        #expect(output.contains("warning: OpenBLAS runs 'Prescott' kernels"), Comment(rawValue: output))
    }
}
