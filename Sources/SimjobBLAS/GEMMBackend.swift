import CBLAS
import Foundation
import SimjobCore
import Synchronization

/// Which product the exact engines multiply with (`--gemm`, job key `gemm`).
///
/// Results never depend on it: reduced-precision products only pre-select candidates, with a
/// slack that provably covers their error, and every candidate is re-scored in fp32 from the
/// vectors (`ReducedRows` in SimjobKernels derives the bound). Only the speed differs.
public enum GEMMChoice: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    /// OpenBLAS sgemm.
    case fp32
    /// oneDNN matmul of bfloat16 inputs, fp32 sums.
    case bf16
    /// oneDNN matmul of 8-bit integers, exact int32 sums.
    case int8
    /// The fastest of the three on this CPU for the product's dimension, by a short
    /// calibration (`GEMMCalibration`); fp32 for small products and where nothing beats it.
    case auto

    public var description: String { rawValue }

    /// The reduced format this choice names; nil for fp32 (and for auto, which is resolved).
    public var format: ReducedGEMM.Format? {
        switch self {
        case .int8: .int8
        case .bf16: .bf16
        case .fp32, .auto: nil
        }
    }
}

/// Measured throughput of each product on this CPU, and `auto`'s choice from it.
///
/// One calibration per dimension and machine (cached in `cacheFile`): each backend multiplies a
/// `1024 x 512` tile of that dimension (the engines' tile shape), after one warm-up call, on one
/// thread, twice; the better time counts. It takes 5-30 ms. bf16 is measured only on CPUs with
/// AMX: without it oneDNN's bf16 ran at about half sgemm's rate on the CPUs measured
/// (AVX512-BF16 included).
public enum GEMMCalibration {
    public struct Measurement: Sendable, Codable {
        public var dimension: Int
        /// GFLOP/s (2 m n k per product) on one thread; nil where the backend is unavailable.
        public var fp32: Double
        public var bf16: Double?
        public var int8: Double?
        /// oneDNN's kernel names (`brg:avx512_core_vnni`, `brg:avx512_core_amx`, ...).
        public var bf16Implementation: String?
        public var int8Implementation: String?

        /// `auto`'s choice: the fastest reduced format when it is at least `requiredSpeedup`
        /// times fp32, else fp32 (nil).
        public var automaticFormat: ReducedGEMM.Format? {
            var best: (ReducedGEMM.Format, Double)? = nil
            for (format, rate) in [(ReducedGEMM.Format.int8, int8), (.bf16, bf16)] {
                guard let rate, rate >= GEMMCalibration.requiredSpeedup * fp32 else { continue }
                if best == nil || rate > best!.1 { best = (format, rate) }
            }
            return best?.0
        }
    }

    /// How much faster than sgemm a reduced product must be for `auto` to take it: the scan
    /// after it, the slack and the wider re-scoring cost the same or more than with fp32, so a
    /// small lead in the product alone would not make the whole run faster.
    public static let requiredSpeedup = 2.0
    /// Products below this many floating-point operations in all run on fp32 under `auto`: the
    /// calibration and the encoding of the rows would cost more than they could save (5e10 is
    /// about a quarter of a second of sgemm on two cores).
    public static let minimumFlops = 5e10

    private static let cache = Mutex<[Int: Measurement]>([:])

    /// The measurement for `dimension`: from this process's cache, else from the machine's cache
    /// file (`cacheFile`), else measured now and added to both. `fresh` measures again (and
    /// updates the file), for `info --system`.
    public static func measurement(dimension: Int, fresh: Bool = false) -> Measurement {
        if !fresh, let known = cache.withLock({ $0[dimension] }) { return known }
        if !fresh, let stored = readCacheFile()[String(dimension)] {
            cache.withLock { $0[dimension] = stored }
            return stored
        }
        let measured = measure(dimension: dimension)
        cache.withLock { $0[dimension] = measured }
        writeCacheFile(adding: measured)
        return measured
    }

    /// The cache file: `$SIMJOB_CACHE_DIR`, else `$XDG_CACHE_HOME/simjob`, else
    /// `~/.cache/simjob`, then `gemm-<key>.json`, where the key names what the measurement depends
    /// on (CPU model and flags, OpenBLAS core, oneDNN version), so another machine, library or
    /// core never reads it. Unreadable or foreign content is ignored and replaced; a folder that
    /// cannot be written only costs the calibration again next time.
    public static var cacheFile: String? {
        let environment = ProcessInfo.processInfo.environment
        let folder: String
        if let own = environment["SIMJOB_CACHE_DIR"], !own.isEmpty {
            folder = own
        } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            folder = xdg + "/simjob"
        } else if let home = environment["HOME"], !home.isEmpty {
            folder = home + "/.cache/simjob"
        } else {
            return nil
        }
        return folder + "/gemm-\(cacheKey).json"
    }

    /// A short stable hash of everything a measurement depends on.
    static var cacheKey: String {
        let cpu = CPUFeatures.current
        let version = ReducedGEMM.libraryVersion
        let text = "\(cpu.vendor)|\(cpu.family)|\(cpu.model)|\(cpu.modelName)|\(cpu.flags.sorted().joined(separator: ","))|\(BLASRuntime.coreName)|\(version)"
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return String(hash, radix: 16)
    }

    static func readCacheFile() -> [String: Measurement] {
        guard let path = cacheFile, let data = FileManager.default.contents(atPath: path),
              let stored = try? JSONDecoder().decode([String: Measurement].self, from: data) else { return [:] }
        return stored.filter { Int($0.key) == $0.value.dimension && $0.value.fp32 > 0 }
    }

    static func writeCacheFile(adding measured: Measurement) {
        guard let path = cacheFile else { return }
        var stored = readCacheFile()
        stored[String(measured.dimension)] = measured
        guard let data = try? JSONEncoder().encode(stored) else { return }
        let folder = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // A temporary name, then a rename: a reader never sees half a file.
        let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, path) != 0 { unlink(temporary) }
    }

    /// Dimensions below which `auto` keeps fp32 for top-k and range scans (exact graph, ground
    /// truth, dedup): there the scan after the product outweighs it, and a faster product
    /// cannot pay for the slack. Measured on the Xeon: int8 took 0.54x fp32's time on a
    /// 128-d graph; nothing under 64 dimensions was measured.
    public static let minimumScanDimension = 64
    /// The same for nearest-centroid assignment (k-means, IVF, PQ), whose scan per pair is
    /// cheaper to beat: on the Xeon int8 was slower than fp32 at 128 dimensions (0.30 s against
    /// 0.26 s per k-means iteration, k = 1024) and faster from 384 (0.45-0.65x).
    public static let minimumAssignmentDimension = 256

    /// The format an engine uses for `choice` on products of `dimension` totalling `flops`;
    /// nil means fp32. `auto` keeps fp32 below `minimumDimension` (see above). Throws when a
    /// reduced format is asked for and this CPU or oneDNN has no product for it.
    public static func resolve(
        _ choice: GEMMChoice, dimension: Int, flops: Double, minimumDimension: Int = minimumScanDimension
    ) throws -> ReducedGEMM.Format? {
        switch choice {
        case .fp32:
            return nil
        case .int8, .bf16:
            let format = choice.format!
            guard dimension <= ReducedGEMM.maximumDimension else {
                throw SimjobError("--gemm \(choice): vectors of \(dimension) dimensions are longer than the \(ReducedGEMM.maximumDimension) a reduced product takes")
            }
            guard ReducedGEMM(format: format) != nil else {
                throw SimjobError("--gemm \(choice): oneDNN has no \(choice) matrix product on this CPU; use --gemm fp32 or auto")
            }
            return format
        case .auto:
            guard flops >= minimumFlops, dimension >= minimumDimension, dimension <= ReducedGEMM.maximumDimension else { return nil }
            return measurement(dimension: dimension).automaticFormat
        }
    }

    static func measure(dimension: Int) -> Measurement {
        let m = 1024, n = 512, k = max(dimension, 1)
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
        let c = UnsafeMutableRawPointer.allocate(byteCount: m * n * 4, alignment: 64)
        let bytesA = UnsafeMutableRawPointer.allocate(byteCount: m * k * 2, alignment: 64)
        let bytesB = UnsafeMutableRawPointer.allocate(byteCount: n * k * 2, alignment: 64)
        defer {
            a.deallocate()
            b.deallocate()
            c.deallocate()
            bytesA.deallocate()
            bytesB.deallocate()
        }
        for index in 0..<(m * k) { a[index] = Float(index % 97) * 0.01 }
        for index in 0..<(n * k) { b[index] = Float(index % 89) * 0.01 }
        // Values that are valid in every format (small integers are valid bf16 and int8 bytes).
        bytesA.initializeMemory(as: UInt8.self, repeating: 0x3F, count: m * k * 2)
        bytesB.initializeMemory(as: UInt8.self, repeating: 0x3E, count: n * k * 2)
        func best(_ run: () -> Void) -> Double {
            run()
            var fastest = Double.infinity
            for _ in 0..<2 {
                let start = DispatchTime.now().uptimeNanoseconds
                run()
                fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return flops / max(fastest, 1e-9) / 1e9
        }
        BLASRuntime.setThreads(1)
        let fp32 = best {
            BLAS.gemmABt(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: c.assumingMemoryBound(to: Float.self), ldc: n)
        }
        var result = Measurement(dimension: dimension, fp32: fp32)
        if dimension <= ReducedGEMM.maximumDimension {
            if let gemm = ReducedGEMM(format: .int8) {
                result.int8 = best { gemm.multiply(m: m, n: n, k: k, a: bytesA, lda: k, b: bytesB, ldb: k, c: c, ldc: n) }
                result.int8Implementation = gemm.implementation(m: m, n: n, k: k)
            }
            let flags = CPUFeatures.current.flags
            if flags.contains("amx_bf16") || flags.contains("amx_tile"), let gemm = ReducedGEMM(format: .bf16) {
                result.bf16 = best { gemm.multiply(m: m, n: n, k: k, a: bytesA, lda: k, b: bytesB, ldb: k, c: c, ldc: n) }
                result.bf16Implementation = gemm.implementation(m: m, n: n, k: k)
            }
        }
        return result
    }
}
