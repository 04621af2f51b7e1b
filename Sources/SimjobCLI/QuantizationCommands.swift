import ArgumentParser
import Foundation
import SimjobBLAS
import Logging
import SimjobAlgorithms
import SimjobOperations
import SimjobKernels

extension KMeansConfig.Initialization: ExpressibleByArgument {}
extension IndexType: ExpressibleByArgument {}

/// The logger commands hand to the engines: plain lines on stderr.
let simjobLogger: Logger = {
    var logger = Logger(label: "simjob")
    logger.logLevel = .info
    return logger
}()

struct KMeansCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmeans",
        abstract: "k-means of a dataset (GEMM assignment; --gemm picks the product): centroids, assignments and per-iteration objective.")

    @Argument(help: "FILE[:DATASET] (default dataset: train).") var input: String
    @Option(help: "Output file.") var output: String
    @Option(help: ArgumentHelp(ParameterHelp.help("k", in: "kmeans"))) var k: Int
    @Option(help: ArgumentHelp(ParameterHelp.help("iterations"))) var iterations = KMeansConfig().iterations
    @Option(help: ArgumentHelp(ParameterHelp.help("initialization"))) var initialization = KMeansConfig().initialization
    @Option(help: ArgumentHelp(ParameterHelp.help("max_points_per_centroid", in: "kmeans"))) var maxPointsPerCentroid = KMeansConfig().maxPointsPerCentroid
    @Flag(help: ArgumentHelp(ParameterHelp.help("spherical"))) var spherical = false
    @Option(help: ArgumentHelp(ParameterHelp.help("restarts"))) var restarts = KMeansConfig().restarts
    @Option(help: ArgumentHelp(ParameterHelp.help("tolerance"))) var tolerance = KMeansConfig().tolerance
    @Option(help: ArgumentHelp(ParameterHelp.help("seed"))) var seed = KMeansConfig().seed
    @Option(help: ArgumentHelp(ParameterHelp.help("metric", in: "kmeans"))) var metric: Metric?
    @Option(help: ArgumentHelp(ParameterHelp.help("gemm", in: "kmeans") + " (default: auto)")) var gemm: GEMMChoice?
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.warnAboutBLAS()
        var config = KMeansConfig(k: k)
        config.iterations = iterations
        config.initialization = initialization
        config.maxPointsPerCentroid = maxPointsPerCentroid
        config.spherical = spherical
        config.restarts = restarts
        config.tolerance = tolerance
        config.seed = seed
        config.threads = common.threads
        config.gemm = gemm ?? config.gemm
        let result = try QuantizationOperations.kmeans(
            input: DatasetReference(parsing: input, defaultDataset: "train"), output: output, config: config,
            metric: metric, logger: common.logger, progressStyle: common.progressStyle)
        printLine("iteration  objective          imbalance  splits  seconds")
        for stats in result.iterations {
            printLine(String(format: "%9d  %-17.8g  %9.4f  %6d  %7.3f", stats.iteration, stats.objective, stats.imbalance, stats.splits, stats.seconds))
        }
        printLine(String(format: "k-means: k=%d on %d training points, %d iterations in %.2f s, objective %.8g -> %@",
                         k, result.sampleSize, result.iterations.count, result.seconds, result.objective, output))
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an index (IVF-PQ: coarse k-means, product quantizer; IVF-Flat: the vectors by cell; HNSW; LSH: hash tables; RP-trees: a forest), encode the set and save it.")

    @Argument(help: "FILE[:DATASET] (default dataset: train).") var input: String
    @Option(help: "Output index file.") var output: String
    @Option(help: ArgumentHelp(ParameterHelp.help("nlist") + " Required for ivfpq and ivfflat.")) var nlist: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("type"))) var type: IndexType = .ivfpq
    @Option(help: ArgumentHelp(ParameterHelp.help("m") + " Required for ivfpq; for hnsw, links per node (default 16).")) var m: Int?
    @Option(help: "hnsw: the k-NN graph (simjob knn-graph output) the base layer is chosen from (default: an exact 2m-NN graph built here).") var graph: String?
    @Option(help: ArgumentHelp(ParameterHelp.help("nbits"))) var nbits = IVFPQConfig().nbits
    @Option(help: ArgumentHelp(ParameterHelp.help("tables"))) var tables = IVFPQConfig().tables
    @Option(help: ArgumentHelp(ParameterHelp.help("hash_bits"))) var hashBits = IVFPQConfig().hashBits
    @Option(help: ArgumentHelp(ParameterHelp.help("trees"))) var trees = IVFPQConfig().trees
    @Option(help: ArgumentHelp(ParameterHelp.help("leaf_size"))) var leafSize = IVFPQConfig().leafSize
    @Option(help: ArgumentHelp(ParameterHelp.help("metric"))) var metric: Metric?
    @Option(help: ArgumentHelp(ParameterHelp.help("coarse_iterations"))) var coarseIterations = IVFPQConfig().coarseIterations
    @Option(help: ArgumentHelp(ParameterHelp.help("pq_iterations"))) var pqIterations = IVFPQConfig().pqIterations
    @Option(help: ArgumentHelp(ParameterHelp.help("max_points_per_centroid"))) var maxPointsPerCentroid = IVFPQConfig().maxPointsPerCentroid
    @Option(help: ArgumentHelp(ParameterHelp.help("seed"))) var seed = IVFPQConfig().seed
    @Option(help: ArgumentHelp(ParameterHelp.help("memory_limit", in: "train"))) var memoryLimit: ByteCount?
    @Option(help: ArgumentHelp(ParameterHelp.help("gemm", in: "train") + " (default: auto)")) var gemm: GEMMChoice?
    @OptionGroup var common: CommonOptions
    @OptionGroup var tagging: TagOptions

    func run() throws {
        common.warnAboutBLAS()
        guard type != .ivfpq || m != nil else { throw ValidationError("Missing expected argument '--m <m>' (sub-quantizers of an ivfpq index)") }
        guard type != .ivfpq || nlist != nil else { throw ValidationError("Missing expected argument '--nlist <nlist>'") }
        guard type != .ivfflat || nlist != nil else { throw ValidationError("Missing expected argument '--nlist <nlist>'") }
        guard graph == nil || type == .hnsw else { throw ValidationError("--graph applies to --type hnsw") }
        guard type == .lsh || (tables == IVFPQConfig().tables && hashBits == IVFPQConfig().hashBits) else {
            throw ValidationError("--tables and --hash-bits apply to --type lsh")
        }
        guard type == .rptrees || (trees == IVFPQConfig().trees && leafSize == IVFPQConfig().leafSize) else {
            throw ValidationError("--trees and --leaf-size apply to --type rptrees")
        }
        guard type != .lsh || nlist == nil else { throw ValidationError("--nlist does not apply to --type lsh") }
        guard type != .rptrees || nlist == nil else { throw ValidationError("--nlist does not apply to --type rptrees") }
        var config = IVFPQConfig(nlist: nlist ?? 1, m: m ?? (type == .hnsw ? 16 : 1), nbits: nbits)
        config.type = type
        config.memoryLimit = memoryLimit
        config.metric = metric
        config.coarseIterations = coarseIterations
        config.pqIterations = pqIterations
        config.maxPointsPerCentroid = maxPointsPerCentroid
        config.seed = seed
        config.threads = common.threads
        config.gemm = gemm ?? config.gemm
        config.tables = tables
        config.hashBits = hashBits
        config.trees = trees
        config.leafSize = leafSize
        let (index, stats) = try tagging.applying {
            try QuantizationOperations.train(
                input: DatasetReference(parsing: input, defaultDataset: "train"), output: output, config: config, graph: graph,
                logger: common.logger, progressStyle: common.progressStyle)
        }
        if type == .hnsw {
            printLine(String(format: "HNSW m=%d %@: %d vectors in %.2f s (reading %.2f s), index %@ -> %@", config.m, index.metric.rawValue, stats.vectors,
                             stats.totalSeconds, stats.readSeconds, formatBytes(index.sizeInBytes), output))
            return
        }
        if let lsh = index as? LSHIndex {
            printLine(String(format: "LSH tables=%d bits=%d %@: %d vectors in %.2f s (reading %.2f s, hashing %.2f s), index %@ -> %@", lsh.tables, lsh.bits,
                             index.metric.rawValue, stats.vectors, stats.totalSeconds, stats.readSeconds, stats.encodeSeconds,
                             formatBytes(index.sizeInBytes), output))
            return
        }
        if let forest = index as? RPForestIndex {
            printLine(String(format: "RP-trees trees=%d leaf_size=%d %@: %d vectors in %.2f s (reading %.2f s, building %.2f s), index %@ -> %@", forest.trees,
                             forest.leafSize, index.metric.rawValue, stats.vectors, stats.totalSeconds, stats.readSeconds, stats.encodeSeconds,
                             formatBytes(index.sizeInBytes), output))
            return
        }
        if type == .ivfflat {
            printLine(String(
                format: "IVF-Flat nlist=%d %@: %d vectors, trained on %d in %.2f s (reading %.2f s, coarse %.2f s, assign %.2f s), list imbalance %.2f, index %@ -> %@",
                config.nlist, index.metric.rawValue, stats.vectors, stats.trainingPoints, stats.totalSeconds, stats.readSeconds, stats.coarseSeconds,
                stats.encodeSeconds, stats.listImbalance, formatBytes(index.sizeInBytes), output))
            return
        }
        printLine(String(
            format: "IVF-PQ nlist=%d m=%d nbits=%d %@: %d vectors, trained on %d in %.2f s (reading %.2f s, coarse %.2f s, PQ %.2f s, encode %.2f s), list imbalance %.2f, PQ residual error %.4g, index %@ -> %@",
            config.nlist, config.m, nbits, index.metric.rawValue, stats.vectors, stats.trainingPoints, stats.totalSeconds, stats.readSeconds,
            stats.coarseSeconds, stats.pqSeconds, stats.encodeSeconds, stats.listImbalance, stats.reconstructionError,
            formatBytes(index.sizeInBytes), output))
    }
}

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search an index (IVF-PQ, IVF-Flat, HNSW, LSH, RP-trees): search/neighbors and search/distances for every query.")

    @Argument(help: "Index file written by simjob train.") var index: String
    @Option(help: "FILE[:DATASET] of queries (default dataset: test).") var queries: String
    @Option(help: "Output file.") var output: String
    @Option(help: ArgumentHelp(ParameterHelp.help("k", in: "search"))) var k: Int
    @Option(help: ArgumentHelp(ParameterHelp.help("nprobe") + " (IVF indexes; required for them)")) var nprobe: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("ef"))) var ef: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("probes"))) var probes: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("search_k"))) var searchK: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("refine"))) var refine = IVFPQSearchConfig().refine
    @Option(help: "Original vectors for --refine (default: the dataset the index was trained on).") var base: String?
    @OptionGroup var common: CommonOptions

    func run() throws {
        var config = IVFPQSearchConfig(k: k, nprobe: nprobe ?? 1, refine: refine)
        config.ef = ef
        config.probes = probes
        config.searchK = searchK
        config.threads = common.threads
        // A file that is no index gets its error from the load, in its words.
        let type = (try? QuantizationOperations.indexType(index)) ?? ""
        if nprobe == nil, type != "HNSW", type != "LSH", type != "RPTrees" {
            throw SimjobError("\(index): an IVF index needs --nprobe (inverted lists scanned per query)")
        }
        let stats = try QuantizationOperations.search(
            index: index, queries: DatasetReference(parsing: queries, defaultDataset: "test"), output: output,
            config: config, base: base.map { DatasetReference(parsing: $0, defaultDataset: "train") })
        let named: [(String, Int?)] = [("ef", ef), ("probes", probes), ("search_k", searchK), ("nprobe", nprobe)]
        let setting = named.first { $0.1 != nil }.map { "\($0.0)=\($0.1!)" } ?? "default"
        printLine(String(format: "search: %d queries, k=%d, %@, refine=%d: %.3f s, %.0f queries/s -> %@",
                         stats.queries, k, setting, refine, stats.seconds, stats.queriesPerSecond, output))
    }
}
