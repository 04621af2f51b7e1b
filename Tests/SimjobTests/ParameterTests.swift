import Foundation
import Testing
import SimjobAlgorithms
@testable import SimjobOperations
@testable import SimjobJobs
import Yams

/// Every configuration parameter is reachable from the command line and from a job file, with the
/// same help; an option of another method is an error, not ignored.
@Suite("Parameters declared once")
struct ParameterTests {
    /// The command of each step kind, and job keys whose option is spelled differently.
    static let commands: [StepKind: String] = [
        .generate: "generate", .groundtruth: "groundtruth", .knnGraph: "knn-graph", .train: "train",
        .search: "search", .evaluate: "evaluate", .dedup: "dedup", .verify: "verify",
    ]
    static let spelled: [String: String] = ["symmetric": "--no-symmetry", "include_exact": "--exact"]

    func help(_ command: String) throws -> String {
        let result = try runProgram(simjobPath, ["help", command], environment: ["COLUMNS": "400", "PATH": "/usr/bin:/bin"])
        #expect(result.status == 0)
        return result.stdout
    }

    @Test("every settings key of every step kind is an option of its command, with the job schema's help", arguments: StepKind.allCases)
    func everyKeyIsAnOption(kind: StepKind) throws {
        let command = try #require(Self.commands[kind])
        let text = try help(command)
        let schema = JobSchema.text()
        for key in kind.settingsKeys {
            let option = Self.spelled[key] ?? "--" + key.replacingOccurrences(of: "_", with: "-")
            #expect(text.contains(option + " ") || text.contains(option + "\n"), "\(command) has no \(option) for job key \(kind.rawValue).\(key)")
            let help = ParameterHelp.help(key, in: kind.rawValue)
            #expect(!help.isEmpty, "no help for \(kind.rawValue).\(key)")
            if key != "symmetric" {
                #expect(text.contains(help.prefix(40)), "\(command) \(option) does not use the parameter's help: \(help)")
            }
            #expect(schema.contains(ParameterHelp.comment(key, in: kind.rawValue)), "the schema lacks the help of \(kind.rawValue).\(key)")
        }
    }

    @Test("an option of the other method or mode is refused, not ignored")
    func otherMethodOptions() throws {
        let folder = TemporaryFolder()
        let data = folder.file("d.hdf5"), out = folder.file("o.hdf5")
        #expect(try simjob("generate", data, "--n", "300", "--queries", "5", "--dim", "8", "--quiet").status == 0)
        let cases: [([String], String)] = [
            (["knn-graph", data, "--k", "5", "--nprobe", "4", "--output", out], "--nprobe applies to --method approx only"),
            (["knn-graph", data, "--k", "5", "--iterations", "3", "--output", out], "--iterations applies to --method approx only"),
            (["knn-graph", data, "--k", "5", "--method", "approx", "--block", "64", "--output", out], "--block applies to --method exact only"),
            (["knn-graph", data, "--k", "5", "--method", "approx", "--no-symmetry", "--output", out], "--no-symmetry applies to --method exact only"),
            (["dedup", data, "--threshold", "0.1", "--partitions", "4", "--output", out], "--partitions applies to --mode fast only"),
        ]
        for (arguments, message) in cases {
            let result = try simjob(arguments)
            #expect(result.status == 64 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        // The options now on the command line do what their job keys do.
        #expect(try simjob("knn-graph", data, "--k", "5", "--method", "approx", "--iterations", "3", "--output", out, "--quiet").status == 0)
        #expect(try simjob("train", data, "--nlist", "4", "--m", "4", "--memory-limit", "1M", "--output", out, "--quiet").status == 0)
        let capped = try simjob("dedup", data, "--threshold", "100", "--max-pairs", "10", "--output", out, "--quiet")
        #expect(capped.status == 1 && capped.stderr.contains("10"), "\(capped.stderr)")
        // The same rule in a job file.
        let job = folder.file("job.yaml")
        FileManager.default.createFile(atPath: job, contents: Data("""
            output: \(folder.file("out"))
            steps:
              - name: g
                knn_graph: {input: \(data), k: 5, nprobe: 4}
              - name: d
                dedup: {input: \(data), threshold: 0.1, seed: 3}
            """.utf8))
        let validation = try simjob("validate", job)
        #expect(validation.stderr.contains("knn_graph.nprobe: applies to method approx only"), "\(validation.stderr)")
        #expect(validation.stderr.contains("dedup.seed: applies to mode fast only"), "\(validation.stderr)")
    }
}

/// Job settings decode through each struct's synthesized `Codable` with the defaults laid under
/// the given keys.
@Suite("Settings overlay")
struct SettingsOverlayTests {
    static let types: [any JobSettings.Type] = [
        ExactKNNConfig.self, SyntheticConfig.self, KMeansConfig.self, IVFPQConfig.self,
        IVFPQSearchConfig.self, EvaluationConfig.self, DedupConfig.self, ApproxKNNConfig.self,
    ]

    static func emptyDecodesToDefaults<T: JobSettings>(_ type: T.Type) throws -> Bool {
        try SettingsOverlay.decode(T.self, from: Node.Mapping([])) == T.jobDefaults
    }

    @Test("no keys give exactly the documented defaults, for every settings struct")
    func defaultsRoundTrip() throws {
        for type in Self.types {
            #expect(try Self.emptyDecodesToDefaults(type), "\(type)")
        }
    }

    func mapping(_ yaml: String) throws -> Node.Mapping {
        try #require(try Yams.compose(yaml: yaml)?.mapping)
    }

    @Test("a given key replaces its default and leaves the others; sizes take units; one value is a list of one")
    func overlay() throws {
        let exact = try SettingsOverlay.decode(ExactKNNConfig.self, from: mapping("k: 7\nmemory_limit: 512M\n"))
        var expected = ExactKNNConfig()
        expected.k = 7
        expected.memoryLimit = ByteCount(bytes: 512 << 20)
        #expect(exact == expected)
        let evaluation = try SettingsOverlay.decode(EvaluationConfig.self, from: mapping("nprobe: 16\nrefine: [0, 4]\n"))
        #expect(evaluation.nprobe == [16])
        #expect(evaluation.refine == [0, 4])
        #expect(evaluation.runs == EvaluationConfig().runs)
        let dedup = try SettingsOverlay.decode(DedupConfig.self, from: mapping("threshold: 0.25\n"))
        #expect(dedup.thresholds == [0.25])
        #expect(throws: DecodingError.self) { try SettingsOverlay.decode(ExactKNNConfig.self, from: mapping("memory_limit: lots\n")) }
        #expect(throws: DecodingError.self) { try SettingsOverlay.decode(ExactKNNConfig.self, from: mapping("k: null\n")) }
    }
}
