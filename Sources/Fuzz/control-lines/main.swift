// libFuzzer's entry point for the control-lines target; the target itself is FuzzTarget.controlLines (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.controlLines.run(start, count)
}
