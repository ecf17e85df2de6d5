// libFuzzer's entry point for the han-stream target; the target itself is FuzzTarget.hanStream (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.hanStream.run(start, count)
}
