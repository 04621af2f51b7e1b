import CDNNL
import Foundation

/// Matrix products on reduced-precision inputs through oneDNN's matmul: `C = A B^T` with
/// `A (m x k)` and `B (n x k)` row-major, as `BLAS.gemmABt` computes in fp32.
///
/// - `.int8`: A in `UInt8`, B in `Int8`, C in `Int32`. The sums are exact integers (no rounding
///   at all below 2^31) for values within `int8Levels` (127 with VNNI; 63 where oneDNN's kernel
///   saturates byte pairs in 16 bits); callers quantize their vectors to that range and bound
///   what quantization changed.
///   CPUs with AVX-512 VNNI multiply 64 byte pairs per instruction, AMX tiles many more.
/// - `.bf16`: A and B in bfloat16 (the top 16 bits of a float), C in `Float`, accumulated in
///   fp32. It pays only where the CPU multiplies bf16 natively in bulk (AMX).
///
/// One `ReducedGEMM` belongs to one worker thread: it holds that worker's oneDNN stream and its
/// primitives, one per product shape, created on first use and reused for every later tile of
/// the shape. Each call first limits the calling thread to one OpenMP thread (Debian builds
/// oneDNN on OpenMP; the engine's workers are the parallelism).
public final class ReducedGEMM: @unchecked Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case int8, bf16
    }

    public let format: Format
    private let stream: dnnl_stream_t
    private var plans: [Shape: Plan] = [:]

    struct Shape: Hashable {
        var m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
    }

    final class Plan {
        let primitive: dnnl_primitive_t
        let a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t
        init(primitive: dnnl_primitive_t, a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t) {
            self.primitive = primitive
            self.a = a
            self.b = b
            self.c = c
        }
        deinit {
            dnnl_memory_destroy(a)
            dnnl_memory_destroy(b)
            dnnl_memory_destroy(c)
            dnnl_primitive_destroy(primitive)
        }
    }

    /// The process's CPU engine, created once; nil when oneDNN cannot create one.
    private nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success else { return nil }
        return engine
    }()

    /// The largest magnitude of a quantized int8 value whose products oneDNN sums exactly on
    /// this CPU: 127, or 63 where the kernel adds byte pairs into 16 bits with saturation.
    ///
    /// Without VNNI (AVX2-only CPUs, AVX-512 without VNNI), oneDNN's u8 x s8 kernels multiply
    /// with `vpmaddubsw`, which adds two adjacent byte products into a saturating int16 before
    /// widening: 2 x 255 x 127 = 64,770 overflows it, and the "exact" sums are silently wrong.
    /// With values within 63 (stored on the A side as q + 64 <= 127), a pair is at most
    /// 2 x 127 x 63 = 16,002 and every sum is exact again. The range is decided by running
    /// oneDNN on extreme inputs at start-up (two shapes, a small one and a tile's), not by CPU
    /// model: 127 only if every sum comes back exact.
    public static let int8Levels: Int32 = {
        guard let gemm = ReducedGEMM(format: .int8) else { return 63 }
        for (m, n, k) in [(16, 16, 64), (256, 512, 128)] {
            // A: 255 everywhere but a few 1s; B: +127 / -127 / 0 patterns, so that pairs overflow
            // int16 if the kernel saturates, in both directions.
            let a = (0..<(m * k)).map { UInt8($0 % 7 == 3 ? 1 : 255) }
            let b = (0..<(n * k)).map { index -> Int8 in
                let (row, column) = (index / k, index % k)
                return row % 3 == 0 ? 127 : row % 3 == 1 ? -127 : (column % 2 == 0 ? 127 : -128)
            }
            var c = [Int32](repeating: 0, count: m * n)
            a.withUnsafeBytes { a in b.withUnsafeBytes { b in c.withUnsafeMutableBytes { c in
                gemm.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: k, c: c.baseAddress!, ldc: n)
            } } }
            for i in 0..<m {
                for j in 0..<n {
                    var exact: Int32 = 0
                    for t in 0..<k { exact += Int32(a[i * k + t]) * Int32(b[j * k + t]) }
                    if c[i * n + j] != exact { return 63 }
                }
            }
        }
        return 127
    }()

    /// nil when oneDNN has no CPU engine or no implementation of this format's product here.
    public init?(format: Format) {
        guard let engine = Self.engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else { return nil }
        self.format = format
        self.stream = stream
        // A small product proves the format has an implementation on this CPU.
        // (Every stored property is set: a failed init still runs deinit, which destroys the stream.)
        guard (try? plan(Shape(m: 16, n: 16, k: 16, lda: 16, ldb: 16, ldc: 16))) != nil else { return nil }
    }

    deinit {
        plans.removeAll()
        dnnl_stream_destroy(stream)
    }

    /// oneDNN's name for the kernel of this format's product of a dense shape
    /// (`brg:avx512_core_vnni`, `brg:avx512_core_amx`, ...): which instructions do the work.
    /// It is the shape's own primitive, so asking after multiplying that shape costs nothing.
    public func implementation(m: Int, n: Int, k: Int) -> String {
        guard let plan = try? plan(Shape(m: m, n: n, k: k, lda: k, ldb: k, ldc: n)) else { return "none" }
        var descriptor: const_dnnl_primitive_desc_t?
        guard dnnl_primitive_get_primitive_desc(plan.primitive, &descriptor) == dnnl_success, let descriptor else { return "unknown" }
        var name: UnsafePointer<CChar>?
        dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name)
        return name.map { String(cString: $0) } ?? "unknown"
    }

    /// `C (m x n) = A (m x k) B (n x k)^T`: int8 takes `UInt8` A, `Int8` B, `Int32` C; bf16 takes
    /// `UInt16` (bfloat16 bits) A and B and `Float` C. Leading dimensions count elements.
    public func multiply(
        m: Int, n: Int, k: Int,
        a: UnsafeRawPointer, lda: Int, b: UnsafeRawPointer, ldb: Int,
        c: UnsafeMutableRawPointer, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        precondition(k > 0 && k <= Self.maximumDimension, "reduced-precision product of dimension \(k)")
        omp_set_num_threads(1)
        let shape = Shape(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        let plan: Plan
        do {
            plan = try plans[shape] ?? self.plan(shape)
        } catch {
            fatalError("oneDNN: \(error)")
        }
        dnnl_memory_set_data_handle(plan.a, UnsafeMutableRawPointer(mutating: a))
        dnnl_memory_set_data_handle(plan.b, UnsafeMutableRawPointer(mutating: b))
        dnnl_memory_set_data_handle(plan.c, c)
        var arguments = [
            dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: plan.a),
            dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: plan.b),
            dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: plan.c),
        ]
        let status = dnnl_primitive_execute(plan.primitive, stream, 3, &arguments)
        precondition(status == dnnl_success, "oneDNN matmul failed (status \(status.rawValue))")
        dnnl_stream_wait(stream)
    }

    /// oneDNN's version and build hash, e.g. `2.6.3 (...)`.
    public static var libraryVersion: String {
        guard let version = dnnl_version()?.pointee else { return "unknown" }
        let hash = version.hash.map { String(cString: $0) } ?? ""
        return "\(version.major).\(version.minor).\(version.patch) \(hash)"
    }

    /// Longest rows an int8 product takes: 255 x 127 x k must stay below 2^31 (exact sums).
    public static let maximumDimension = 65_000

    private func plan(_ shape: Shape) throws -> Plan {
        if let plan = plans[shape] { return plan }
        let descriptor = try Self.descriptor(format: format, shape)
        var primitiveDescriptor: dnnl_primitive_desc_t?
        var status = withUnsafePointer(to: descriptor) {
            dnnl_primitive_desc_create(&primitiveDescriptor, $0, nil, Self.engine, nil)
        }
        guard status == dnnl_success, let primitiveDescriptor else { throw SimjobDNNLError(status: status, what: "primitive descriptor") }
        defer { dnnl_primitive_desc_destroy(primitiveDescriptor) }
        var primitive: dnnl_primitive_t?
        status = dnnl_primitive_create(&primitive, primitiveDescriptor)
        guard status == dnnl_success, let primitive else { throw SimjobDNNLError(status: status, what: "primitive") }
        var memories: [dnnl_memory_t] = []
        for (index, query) in [dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md].enumerated() {
            guard let md = dnnl_primitive_desc_query_md(primitiveDescriptor, query, 0) else {
                throw SimjobDNNLError(status: dnnl_runtime_error, what: "memory descriptor \(index)")
            }
            var memory: dnnl_memory_t?
            status = dnnl_memory_create(&memory, md, Self.engine, nil)
            guard status == dnnl_success, let memory else { throw SimjobDNNLError(status: status, what: "memory") }
            memories.append(memory)
        }
        let plan = Plan(primitive: primitive, a: memories[0], b: memories[1], c: memories[2])
        plans[shape] = plan
        return plan
    }

    /// The matmul's description: strided row-major A, B read as the `k x n` matrix `B^T`
    /// (strides 1 and `ldb`), strided row-major C.
    private static func descriptor(format: Format, _ shape: Shape) throws -> dnnl_matmul_desc_t {
        let (aType, bType, cType) = switch format {
        case .int8: (dnnl_u8, dnnl_s8, dnnl_s32)
        case .bf16: (dnnl_bf16, dnnl_bf16, dnnl_f32)
        }
        var a = dnnl_memory_desc_t(), b = dnnl_memory_desc_t(), c = dnnl_memory_desc_t()
        func dims(_ x: Int, _ y: Int) -> dnnl_dims_t {
            var value = dnnl_dims_t(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            value.0 = Int64(x)
            value.1 = Int64(y)
            return value
        }
        var status = withUnsafePointer(to: dims(shape.m, shape.k)) { d in
            withUnsafePointer(to: dims(shape.lda, 1)) { s in
                dnnl_memory_desc_init_by_strides(&a, 2, UnsafeRawPointer(d).assumingMemoryBound(to: Int64.self), aType, UnsafeRawPointer(s).assumingMemoryBound(to: Int64.self))
            }
        }
        guard status == dnnl_success else { throw SimjobDNNLError(status: status, what: "A descriptor") }
        status = withUnsafePointer(to: dims(shape.k, shape.n)) { d in
            withUnsafePointer(to: dims(1, shape.ldb)) { s in
                dnnl_memory_desc_init_by_strides(&b, 2, UnsafeRawPointer(d).assumingMemoryBound(to: Int64.self), bType, UnsafeRawPointer(s).assumingMemoryBound(to: Int64.self))
            }
        }
        guard status == dnnl_success else { throw SimjobDNNLError(status: status, what: "B descriptor") }
        status = withUnsafePointer(to: dims(shape.m, shape.n)) { d in
            withUnsafePointer(to: dims(shape.ldc, 1)) { s in
                dnnl_memory_desc_init_by_strides(&c, 2, UnsafeRawPointer(d).assumingMemoryBound(to: Int64.self), cType, UnsafeRawPointer(s).assumingMemoryBound(to: Int64.self))
            }
        }
        guard status == dnnl_success else { throw SimjobDNNLError(status: status, what: "C descriptor") }
        var descriptor = dnnl_matmul_desc_t()
        status = dnnl_matmul_desc_init(&descriptor, &a, &b, nil, &c)
        guard status == dnnl_success else { throw SimjobDNNLError(status: status, what: "matmul descriptor") }
        return descriptor
    }
}

struct SimjobDNNLError: Error, CustomStringConvertible {
    let status: dnnl_status_t
    let what: String
    var description: String { "oneDNN could not create the \(what) (status \(status.rawValue))" }
}
