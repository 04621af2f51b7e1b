import Dispatch
import Foundation
import SimjobAlgorithms
import SimjobBLAS
import SimjobKernels

/// What `simjob info --system` shows: the CPU, the BLAS kernels in use and a measured sgemm rate.
public enum SystemReport {
    /// Measured sgemm throughput, in GFLOP/s, of `threads` workers each multiplying its own
    /// `m x k` by `k x n` matrices (single-threaded BLAS in each worker, as the engine runs it).
    /// The default shape is the engine's: a 4096 x 4096 block of inner products of 128-d vectors.
    public static func measureSgemm(threads: Int, m: Int = 4096, n: Int = 4096, k: Int = 128, seconds: Double = 0.6) -> Double {
        BLASRuntime.setThreads(1)
        let flopsPerCall = 2.0 * Double(m) * Double(n) * Double(k)
        let matrices = (0..<threads).map { worker -> (FloatMatrix, FloatMatrix, FloatMatrix) in
            var rng = SeededGenerator(seed: 7, stream: UInt64(worker))
            let a = FloatMatrix(rows: m, columns: k)
            let b = FloatMatrix(rows: n, columns: k)
            rng.fillGaussian(a.pointer, count: m * k)
            rng.fillGaussian(b.pointer, count: n * k)
            return (a, b, FloatMatrix(rows: m, columns: n))
        }
        // Warm-up: page in the buffers and let OpenBLAS allocate its own.
        for (a, b, c) in matrices {
            BLAS.gemmABt(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: k, c: c.pointer, ldc: n)
        }
        let started = ProgressDisplay.now()
        let calls = UnsafeSendable(UnsafeMutablePointer<Int>.allocate(capacity: threads))
        defer { calls.value.deallocate() }
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            let (a, b, c) = matrices[worker]
            var count = 0
            while ProgressDisplay.now() - started < seconds || count == 0 {
                BLAS.gemmABt(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: k, c: c.pointer, ldc: n)
                count += 1
            }
            calls.value[worker] = count
        }
        let elapsed = ProgressDisplay.now() - started
        let total = (0..<threads).reduce(0) { $0 + calls.value[$1] }
        return Double(total) * flopsPerCall / elapsed / 1e9
    }

    /// The library's own kernel choice and its one-thread sgemm rate, measured by running this
    /// executable again with `OPENBLAS_CORETYPE` unset and no relaunch. Nil if that fails.
    public static func probeLibraryDefault(seconds: Double) -> (core: String, gflops: Double)? {
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = nil
        environment[BLASRuntime.relaunchedVariable] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["info", "--sgemm-probe", "--sgemm-seconds", String(seconds)]
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        var core: String?, gflops: Double?
        for field in String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = field.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "core" { core = parts[1] }
            if parts[0] == "gflops" { gflops = Double(parts[1]) }
        }
        guard let core, let gflops else { return nil }
        return (core, gflops)
    }
}
