// The fuzzing driver of simjob's user-fed parsers (see FuzzEntries).
//
// Built for libFuzzer (`make fuzz`: `swift build --sanitize fuzzer -Xswiftc -DSIMJOB_FUZZ
// -Xswiftc -parse-as-library`), it exports LLVMFuzzerTestOneInput and the target is chosen by
// SIMJOB_FUZZ_TARGET=jobs|index|forest. Built normally, it replays files: `simjob-fuzz jobs FILE...`.
import Foundation
import SimjobFuzz

#if SIMJOB_FUZZ
let fuzzTarget = ProcessInfo.processInfo.environment["SIMJOB_FUZZ_TARGET"] ?? "jobs"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    switch fuzzTarget {
    case "index": FuzzEntries.index(data)
    case "forest": FuzzEntries.forest(data)
    default: FuzzEntries.jobFile(data)
    }
    return 0
}
#else
/// Built normally: replays files through an entry point, for the test suite and for
/// reproducing a crash the fuzzer found.
@main
struct FuzzReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let target = arguments.first, ["jobs", "index", "forest"].contains(target) else {
            FileHandle.standardError.write(Data("usage: simjob-fuzz jobs|index|forest FILE...\n".utf8))
            exit(2)
        }
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            switch target {
            case "index": FuzzEntries.index(data)
            case "forest": FuzzEntries.forest(data)
            default: FuzzEntries.jobFile(data)
            }
        }
        print("replayed \(arguments.count - 1) inputs")
    }
}
#endif
