import Foundation
import Testing
import SimjobFuzz

/// The fuzzing corpus (seeds and what libFuzzer found), replayed in process through the same
/// entry points with every debug check on: each input ends accepted or refused with a message.
/// The libFuzzer run itself is `make fuzz-short` (part of `make test`) and `make fuzz`.
@Suite("Fuzzing corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus").path

    func inputs(_ target: String) throws -> [Data] {
        let folder = Self.corpus + "/" + target
        return try FileManager.default.contentsOfDirectory(atPath: folder).sorted().compactMap { FileManager.default.contents(atPath: folder + "/" + $0) }
    }

    @Test("job files: every corpus input is planned or refused with a message, and the examples are planned")
    func jobs() throws {
        let all = try inputs("jobs")
        #expect(all.count >= 100, "corpus has \(all.count) job inputs")
        var accepted = 0
        for data in all {
            switch FuzzEntries.jobFile(data) {
            case .accepted: accepted += 1
            case .refused(let message): #expect(!message.isEmpty)
            case .notWritten: Issue.record("a job input cannot be 'not written'")
            }
        }
        #expect(accepted >= 1, "no corpus job file plans")
    }

    @Test("index files: every corpus input is searched or refused in one line; some reach the search")
    func indexes() throws {
        let all = try inputs("index")
        #expect(all.count >= 50, "corpus has \(all.count) index inputs")
        var searched = 0, refused = 0
        for data in all {
            switch FuzzEntries.index(data) {
            case .accepted: searched += 1
            case .refused(let message):
                refused += 1
                #expect(!message.contains("\n") && message.contains("index"), "\(message)")
            case .notWritten: break
            }
        }
        #expect(searched >= 5 && refused >= 5, "searched \(searched), refused \(refused) of \(all.count)")
    }

    @Test("forest files: every corpus input is searched or refused in one line; some reach the search")
    func forests() throws {
        let all = try inputs("forest")
        #expect(all.count >= 20, "corpus has \(all.count) forest inputs")
        var searched = 0, refused = 0
        for data in all {
            switch FuzzEntries.forest(data) {
            case .accepted: searched += 1
            case .refused(let message):
                refused += 1
                #expect(!message.contains("\n") && message.contains("index"), "\(message)")
            case .notWritten: break
            }
        }
        #expect(searched >= 3 && refused >= 3, "searched \(searched), refused \(refused) of \(all.count)")
    }
}
