// libFuzzer's entry point for the han-link-sequence target; the target itself is FuzzTarget.hanLinkSequence (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.hanLinkSequence.run(start, count)
}
