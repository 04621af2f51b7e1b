/// The help text of every configuration parameter, in one place: the command-line options and
/// `simjob schema` (the job keys) both read it, so an option and its job key always say the
/// same. Keys are the job keys (`latent_dim`); `KIND.key` entries hold the wording for one step
/// kind or command where the same key means something narrower there.
public enum ParameterHelp {
    static let text: [String: String] = [
        // generate
        "n": "Rows of train.",
        "queries": "Rows of test (queries).",
        "dim": "Dimension.",
        "generate.metric": "Distance recorded in the file: euclidean, angular or ip.",
        "clusters": "Gaussian clusters in the mixture.",
        "latent_dim": "Clusters vary mostly within random subspaces of this dimension, like real embeddings (0: isotropic).",
        "anisotropy": "Anisotropic clusters in the full dimension: the l-th of each cluster's random directions has deviation (1 + l)^(-A/2) (0: isotropic; the hard case: --clusters 1000 --anisotropy 1).",
        "duplicates": "Fraction of train rows planted as near-duplicates (recorded in dup_group).",
        "generate.k": "Ground-truth neighbours per query (0: none).",
        "seed": "Random seed.",
        // shared
        "k": "Neighbours per row (ground truth: per query).",
        "metric": "euclidean, angular or ip (default: the input's distance attribute).",
        "threads": "Worker threads (default: all cores).",
        // the exact engine
        "memory_limit": "Vectors held in memory at once, e.g. 512M or 8G (default: half of RAM); larger sets stream.",
        "block": "Rows and columns per tile (one block x block sgemm each).",
        "gemm": "Product of the exact tiles: fp32 (OpenBLAS), int8 or bf16 (oneDNN, re-scored exactly: same results), or auto (the fastest here, measured; see info --system).",
        "symmetric": "Compute each pair once in self-joins (--no-symmetry computes (i, j) and (j, i) separately, for comparison).",
        // the approximate graph
        "knn_graph.partitions": "approx: k-means cells (0: n / 1000, sqrt(n) above a million rows).",
        "knn_graph.nprobe": "approx: cells each row searches (more: higher recall).",
        "knn_graph.rounds": "approx: rounds of NN-descent local join after the cell search.",
        "knn_graph.recall": "approx: target sampled recall (0-1); picks nprobe and rounds itself.",
        "knn_graph.recall_sample": "approx: rows whose exact neighbours measure the recall reported (0: none).",
        "knn_graph.dimension": "approx: dimension candidates are ranked in (principal components), then re-scored exactly (0: chosen; the input's dimension: no reduction).",
        "knn_graph.candidates": "approx: candidates per row re-scored exactly (0: 3 x k when reduced; 4 x k with --recall when the reduced space holds under 90 % of the variance).",
        "knn_graph.expand": "approx: list entries (and reverse neighbours) of each row joined in a refinement round (0: 2 x k).",
        "knn_graph.iterations": "approx: k-means iterations of the cells.",
        "knn_graph.seed": "approx: random seed of the k-means.",
        // k-means
        "kmeans.k": "Number of centroids.",
        "iterations": "Lloyd iterations.",
        "initialization": "random or kmeans++.",
        "kmeans.max_points_per_centroid": "Training points per centroid; larger sets are subsampled (0: all).",
        "spherical": "Normalise centroids after each update (angular data).",
        "restarts": "Independent runs; the lowest objective wins.",
        "tolerance": "Stop once the objective improves by less than this fraction (0: run every iteration).",
        "kmeans.metric": "euclidean, angular or ip (default: the input's distance attribute, else euclidean); angular normalises the data.",
        // IVF-PQ training
        "nlist": "Inverted lists (coarse centroids).",
        "m": "Sub-quantizers; must divide the dimension.",
        "type": "Index type: ivfpq (product-quantized residuals), ivfflat (the vectors themselves, exact distances in the probed cells), hnsw (a graph built from the k-NN graph; --m links per node), lsh (hash tables of random-projection signs, --tables and --hash-bits; candidates scored exactly) or rptrees (a forest of random-projection trees as Annoy builds them, --trees and --leaf-size; candidates scored exactly).",
        "tables": "LSH: hash tables.",
        "hash_bits": "LSH: bits of each table's code, 1 to 31 (0: about log2(rows / 32), within 4 to 20).",
        "probes": "LSH: buckets probed per table, the query's own first, then by multi-probe order (default: 1). With --refine R instead, every code is ranked by Hamming distance and the R x k nearest scored exactly (as FAISS IndexLSH + IndexRefineFlat).",
        "evaluate.probes": "LSH indexes: probes values to sweep, comma-separated.",
        "trees": "Random-projection trees: trees in the forest.",
        "leaf_size": "Random-projection trees: most rows in a leaf (0: d + 2, as Annoy).",
        "search_k": "Random-projection trees: candidates the priority queue over the trees collects, counted with repeats, as Annoy's search_k (default: trees x k).",
        "evaluate.search_k": "Random-projection trees: search_k values to sweep, comma-separated.",
        "ef": "HNSW: beam width of the base layer's search (default: max(k, 10)).",
        "nbits": "Bits per sub-quantizer code (1 to 8).",
        "coarse_iterations": "Coarse k-means iterations.",
        "pq_iterations": "Product-quantizer k-means iterations.",
        "max_points_per_centroid": "Training points per centroid (larger sets are subsampled).",
        "dedup.memory_limit": "Memory the run may take, e.g. 512M or 8G (default: half of RAM); above it the vectors go to a spill file beside the output.",
        "train.memory_limit": "Vectors held in memory at once, e.g. 512M or 8G (default: half of RAM); a larger set is read twice.",
        // search
        "search.k": "Neighbours per query.",
        "nprobe": "Inverted lists scanned per query.",
        "refine": "Re-rank refine * k candidates with exact distances (0: off).",
        // evaluate
        "evaluate.k": "Neighbours per query.",
        "evaluate.ef": "HNSW indexes: ef values to sweep, comma-separated.",
        "evaluate.nprobe": "nprobe values, comma-separated.",
        "evaluate.refine": "refine values, comma-separated (0: none).",
        "runs": "Batch runs per setting (the fastest counts).",
        "latency_queries": "Queries timed one at a time for latency percentiles (0: none).",
        "include_exact": "Also evaluate exact search, the recall 1.0 reference.",
        // dedup
        "threshold": "Distance threshold(s) in the metric (angular: 1 - cos; euclidean: L2), comma-separated; the first one's groups go to dedup/group.",
        "mode": "exact (every pair) or fast (k-means partitions and their borders).",
        "keep": "Representative per group: first (lowest id) or centroid (closest to the group mean).",
        "kmeans.gemm": "Product of the assignment step: fp32, int8 or bf16 (candidates re-scored exactly: same assignments), or auto (the fastest here, measured).",
        "train.gemm": "Product of the coarse k-means, cell assignment and PQ training: fp32, int8, bf16 or auto (the same index with each).",
        "dedup.gemm": "Exact mode: product of the join's tiles: fp32, int8 or bf16 (re-scored exactly: same pairs), or auto (the fastest here, measured).",
        "dedup.partitions": "Fast mode: k-means partitions (0: n / 2000).",
        "dedup.nprobe": "Fast mode: nearest cells each row joins (0: every cell the triangle inequality allows; exact).",
        "recall_sample": "Fast mode: rows checked against an exact join for the pair recall in the log (0: none).",
        "max_pairs": "Refuse to go past this many pairs (a threshold far above the duplicates' scale pairs every row with many).",
        "dedup.seed": "Random seed (fast mode).",
    ]

    /// The help of `key` for a command or step kind (`knn-graph` and `knn_graph` both work).
    public static func help(_ key: String, in command: String? = nil) -> String {
        let kind = command?.replacingOccurrences(of: "-", with: "_")
        if let kind, let specific = text["\(kind).\(key)"] { return specific }
        return text[key] ?? ""
    }

    /// The same help as a comment for the job schema (no final period).
    public static func comment(_ key: String, in kind: String) -> String {
        var line = help(key, in: kind)
        if line.hasSuffix(".") { line.removeLast() }
        return line
    }
}
