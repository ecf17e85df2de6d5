// libFuzzer's entry point for the json target; the target itself is FuzzTarget.json (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.json.run(start, count)
}
