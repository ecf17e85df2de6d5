// libFuzzer's entry point for the jsonrpc target; the target itself is FuzzTarget.jsonRPC (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.jsonRPC.run(start, count)
}
