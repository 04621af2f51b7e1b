import Foundation
import SimjobAlgorithms

/// `FILE[:DATASET]` as written on the command line: a file and a dataset inside it.
public struct DatasetReference: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var dataset: String

    public init(path: String, dataset: String) {
        self.path = path
        self.dataset = dataset
    }

    /// Parses `FILE:DATASET`, or `FILE` with `defaultDataset`. A path that exists as written is
    /// taken whole, so file names containing ':' still work.
    public init(parsing text: String, defaultDataset: String) {
        if FileManager.default.fileExists(atPath: text) || !text.contains(":") {
            self.init(path: text, dataset: defaultDataset)
            return
        }
        let separator = text.lastIndex(of: ":")!
        let dataset = String(text[text.index(after: separator)...])
        self.init(path: String(text[..<separator]), dataset: dataset.isEmpty ? defaultDataset : dataset)
    }

    public var description: String { "\(path):\(dataset)" }
}
