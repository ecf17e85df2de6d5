// libFuzzer's entry point for the model-json target; the target itself is FuzzTarget.modelJSON (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.modelJSON.run(start, count)
}
