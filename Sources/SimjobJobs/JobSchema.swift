import Foundation
import SimjobAlgorithms
import SimjobOperations
import Yams

/// `simjob schema`: an annotated example job with every key and its default.
public enum JobSchema {
    public static func text() -> String {
        var lines = [
            "# simjob job file: every key, with its default. Steps run in order; a step's output is",
            "# OUTPUT/NAME.hdf5 and later steps refer to it by NAME (a dedup step's kept rows: NAME.kept).",
            "name: example                 # default: the file's name",
            "description: what the job is for",
            "output: out/example           # required: folder for outputs and job-state.json",
            "metric: null                  # default metric of every step (null: each input's distance attribute)",
            "threads: null                 # default worker threads of every step (null: every core)",
            "tags: {}                      # KEY: VALUE stamped into every index, graph and dedup output's provenance",
            "inputs:                       # named input files (a path, or PATH:DATASET)",
            "  embeddings: data/embeddings.hdf5",
            "steps:",
        ]
        for kind in StepKind.allCases {
            lines.append("  - name: \(kind.rawValue)                # optional; default: the kind. \(kind.summary)")
            lines.append("    \(kind.rawValue):")
            for own in kind.ownKeys {
                lines.append("      " + column("\(own.key): \(own.example)") + "# \(own.help)")
            }
            let defaults = (try? YAMLEncoder().encode(AnyEncodable(kind.defaultSettings)))
                .flatMap { try? Yams.compose(yaml: $0) }?.mapping ?? Node.Mapping([])
            for key in kind.settingsKeys {
                let value = defaults[key].map(yaml) ?? "null"
                let help = ParameterHelp.comment(key, in: kind.rawValue)
                lines.append("      " + column("\(key): \(value)") + (help.isEmpty ? "" : "# \(help)"))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` padded to 30 columns, or followed by one space when longer (never cut).
    static func column(_ text: String) -> String {
        text.count < 30 ? text.padding(toLength: 30, withPad: " ", startingAt: 0) : text + " "
    }

    static func yaml(_ node: Node) -> String {
        if let list = node.sequence { return "[" + list.map(yaml).joined(separator: ", ") + "]" }
        return node.string ?? "null"
    }
}

/// Lets an existential `Encodable` be encoded.
struct AnyEncodable: Encodable {
    let value: Encodable
    init(_ value: Encodable) { self.value = value }
    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
}
