import Foundation
import Testing

/// 3,000 x 16 rows plus 100 queries with exact ground truth (numpy, float64) in the
/// ann-benchmarks layout: Gaussian rows (`clusters` 0) or rows around `clusters` Gaussian
/// centres 3 apart, drawn with `seed`.
func writeSmallSet(_ path: String, metric: String, clusters: Int, seed: Int) throws {
    try python("""
        import sys, h5py, numpy as np
        rng = np.random.default_rng(int(sys.argv[3])); clusters = int(sys.argv[4])
        if clusters > 0:
            centres = rng.standard_normal((clusters, 16)) * 3
            x = (centres[rng.integers(0, clusters, 3100)] + rng.standard_normal((3100, 16))).astype("f4")
        else:
            x = rng.standard_normal((3100, 16)).astype("f4")
        train, test = x[:3000], x[3000:]
        a, b = train.astype("f8"), test.astype("f8")
        if sys.argv[2] == "euclidean": d = ((b[:, None, :] - a[None]) ** 2).sum(-1)
        elif sys.argv[2] == "angular":
            d = 1 - (b / np.linalg.norm(b, axis=1, keepdims=True)) @ (a / np.linalg.norm(a, axis=1, keepdims=True)).T
        else: d = -(b @ a.T)
        with h5py.File(sys.argv[1], "w") as f:
            f["train"] = train; f["test"] = test; f["neighbors"] = np.argsort(d, 1)[:, :10].astype("i4")
            f["distances"] = np.sort(d, 1)[:, :10].astype("f4"); f.attrs["distance"] = sys.argv[2]
        """, path, metric, "\(seed)", "\(clusters)")
}

/// The share of the true 10 neighbours (`data`'s `neighbors`) among a search's results
/// (`searched`'s `search/neighbors`), by h5py.
func searchIDRecall(_ data: String, _ searched: String) throws -> Double {
    let printed = try python("""
        import sys, h5py, numpy as np
        t = h5py.File(sys.argv[1])["neighbors"][:, :10]; r = h5py.File(sys.argv[2])["search/neighbors"][:]
        print(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(t, r)]))
        """, data, searched)
    return Double(printed.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
}
