// swift-tools-version: 6.1
//
// simjob: a CPU-only batch engine for vector similarity work.
//
// The targets mirror the architecture, bottom to top:
//   CHDF5, CBLAS, CDNNL  system-library module maps over Debian's libhdf5-dev, libopenblas-dev
//                        and libdnnl-dev (oneDNN, for int8 products)
//   CMemoryHints         a prefetch hint, a movemask, popcounts and the mapped-file SIGBUS guard
//   SimjobHDF5           a small Swift API over HDF5: files, datasets, block reads, attributes,
//                        atomic (temporary name, then rename) output files
//   SimjobBLAS           the products: sgemm and the BLAS runtime (core in use, thread count,
//                        AVX-512 check), oneDNN's int8 matmul, the backend choice
//   SimjobKernels        numeric kernels over unsafe buffers: metrics, norms, fused
//                        distance + top-k scans, random numbers. No I/O, threads or logging.
//   SimjobAlgorithms     the engines: tiling, Dispatch workers, cancellation, progress; exact and
//                        approximate k-NN, k-means, PQ/IVF, dedup, evaluation, synthetic data.
//                        They take matrices and row sources and return results: no files.
//   SimjobOperations     file formats and command operations: open and check inputs, run an
//                        engine, write each output group atomically
//   SimjobJobs           YAML job files: validation with line numbers, resumable steps, state
//   SimjobCLI            the `simjob` commands (swift-argument-parser)
//   SimjobFuzz           fuzzing entry points of the two parsers users feed (job files, indexes)
//   simjob               the executable: a few lines that hand over to SimjobCLI
import PackageDescription

// Hot loops are compiled without bounds checks in release builds, for x86-64 CPUs with AVX2
// and FMA (Haswell, 2013, and later): SIMD16 code built for the baseline x86-64 calls fmaf()
// per lane and ran the fused distance scan 2.8x slower here. AVX-512 code gained nothing
// measurable, since sgemm (OpenBLAS picks its own kernels at run time) does the heavy lifting.
// Tests run debug builds, where every check stays on.
#if arch(x86_64)
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
]
#else
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
]
#endif

let package = Package(
    name: "simjob",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "simjob", targets: ["simjob"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CHDF5",
            path: "Sources/CHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]
        ),
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CDNNL",
            path: "Sources/CDNNL",
            providers: [.apt(["libdnnl-dev"])]
        ),
        // The one error type of every layer.
        .target(name: "SimjobCore"),
        .target(name: "SimjobHDF5", dependencies: ["SimjobCore", "CHDF5"]),
        .target(name: "SimjobBLAS", dependencies: ["SimjobCore", "CBLAS", "CDNNL"], swiftSettings: kernelSettings),
        .target(name: "CMemoryHints", path: "Sources/CMemoryHints", cSettings: [.unsafeFlags(["-O2", "-fno-slp-vectorize", "-fno-vectorize"])]),
        .target(name: "SimjobKernels", dependencies: ["SimjobBLAS", "CMemoryHints"], swiftSettings: kernelSettings),
        .target(
            name: "SimjobAlgorithms",
            dependencies: [
                "SimjobCore", "SimjobBLAS", "SimjobKernels", "CMemoryHints",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: kernelSettings
        ),
        .target(
            name: "SimjobOperations",
            dependencies: [
                "SimjobHDF5", "SimjobBLAS", "SimjobKernels", "SimjobAlgorithms",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: kernelSettings
        ),
        .target(
            name: "SimjobJobs",
            dependencies: [
                "SimjobHDF5", "SimjobKernels", "SimjobAlgorithms", "SimjobOperations",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SimjobCLI",
            dependencies: [
                "SimjobHDF5", "SimjobBLAS", "SimjobKernels", "SimjobAlgorithms", "SimjobOperations", "SimjobJobs",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "simjob", dependencies: ["SimjobCLI"]),
        // Fuzzing entry points of the job-file and index-file parsers, and their libFuzzer driver.
        .target(name: "SimjobFuzz", dependencies: ["SimjobHDF5", "SimjobKernels", "SimjobAlgorithms", "SimjobOperations", "SimjobJobs"]),
        .executableTarget(name: "simjob-fuzz", dependencies: ["SimjobFuzz"]),
        .testTarget(
            name: "SimjobTests",
            dependencies: ["SimjobCore", "SimjobHDF5", "SimjobBLAS", "SimjobKernels", "SimjobAlgorithms", "SimjobOperations", "SimjobJobs", "SimjobCLI", "SimjobFuzz", "simjob"]
        ),
    ]
)
