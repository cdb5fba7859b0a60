// Kept apart from Foundation's import: `@preconcurrency` lets this file name
// C's global `stdout` stream, which Swift 6 otherwise rejects as shared state.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif

/// Makes C's standard output stream (what `print` writes to) flush at each
/// line end even when standard output is a pipe.
func lineBufferStandardOutput() {
    setvbuf(stdout, nil, _IOLBF, 0)
}
