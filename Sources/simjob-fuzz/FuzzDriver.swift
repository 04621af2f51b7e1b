// The fuzzing driver of simjob's two user-fed parsers (see FuzzEntries).
//
// Built for libFuzzer (`make fuzz`: `swift build --sanitize fuzzer -Xswiftc -DSIMJOB_FUZZ
// -Xswiftc -parse-as-library`), it exports LLVMFuzzerTestOneInput and the target is chosen by
// SIMJOB_FUZZ_TARGET=jobs|index. Built normally, it replays files: `simjob-fuzz jobs FILE...`.
import Foundation
import SimjobFuzz

#if SIMJOB_FUZZ
let fuzzTarget = ProcessInfo.processInfo.environment["SIMJOB_FUZZ_TARGET"] ?? "jobs"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    if fuzzTarget == "index" { FuzzEntries.index(data) } else { FuzzEntries.jobFile(data) }
    return 0
}
#else
/// Built normally: replays files through an entry point, for the test suite and for
/// reproducing a crash the fuzzer found.
@main
struct FuzzReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let target = arguments.first, ["jobs", "index"].contains(target) else {
            FileHandle.standardError.write(Data("usage: simjob-fuzz jobs|index FILE...\n".utf8))
            exit(2)
        }
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            if target == "index" { FuzzEntries.index(data) } else { FuzzEntries.jobFile(data) }
        }
        print("replayed \(arguments.count - 1) inputs")
    }
}
#endif
