import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one setting for how many threads the library computes with, and its one
/// thread pool. Large matrix products are split between these threads (each part
/// a single-threaded BLAS call, see ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``),
/// as are the Swift kernels' loops (attention heads, LayerNorm and activation
/// rows); the BLAS runs no threads of its own that could compete with them. A loop
/// started inside another's body runs inline on its thread.
public enum Threading {
    private static let configured = Atomic<Int>(0)

    /// The active processors, counted once: on Linux, Foundation reads the
    /// process's cgroup files at every call (tens of microseconds), and
    /// ``threadCount`` is read by every kernel call.
    private static let activeProcessors = ProcessInfo.processInfo.activeProcessorCount

    /// The number of threads in use (by default the number of active processors
    /// when the library first asked).
    public static var threadCount: Int {
        let value = configured.load(ordering: .relaxed)
        return value > 0 ? value : activeProcessors
    }

    /// Sets the number of threads for products and the Swift kernels (clamped to ≥ 1).
    public static func setThreadCount(_ count: Int) {
        let value = max(1, count)
        configured.store(value, ordering: .relaxed)
        BLAS.setThreadCount(value)
    }

    /// Whether the calling thread is running the body of a ``parallelFor(_:_:)``
    /// (where further loops, and products, run inline).
    public static var isInParallelLoop: Bool { pthread_getspecific(loopDepthKey) != nil }

    /// Marks the calling thread as inside (or, with `false`, outside) a loop body;
    /// nests.
    private static func markInLoop(_ inside: Bool) {
        let depth = Int(bitPattern: pthread_getspecific(loopDepthKey)) + (inside ? 1 : -1)
        pthread_setspecific(loopDepthKey, UnsafeRawPointer(bitPattern: depth))
    }

    private static let loopDepthKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed (\(status)): the process is out of thread-local keys")
        return key
    }()

    /// ``BLAS/description``: the BLAS library, how its CPU kernel was chosen and
    /// the kernel in force (ends with "core <name>"), for reports.
    @available(*, deprecated, renamed: "BLAS.description")
    public static var blasDescription: String { BLAS.description }

    /// ``BLAS/advice``: a hint when OpenBLAS runs a generic kernel this process
    /// did not replace; nil when there is nothing to say (in particular after
    /// the automatic switch, or when `OPENBLAS_CORETYPE` is set).
    @available(*, deprecated, renamed: "BLAS.advice")
    public static var blasAdvice: String? { BLAS.advice }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over at most
    /// ``threadCount`` threads in contiguous blocks. Runs inline when there is a
    /// single thread or a single item, or when called from inside another loop's
    /// body (``isInParallelLoop``).
    public static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        let threads = min(threadCount, count)
        if threads <= 1 || isInParallelLoop {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                markInLoop(true)
                defer { markInLoop(false) }
                let start = count * part / threads
                let end = count * (part + 1) / threads
                for i in start..<end { box.value(i) }
            }
        }
    }
}

/// Carries a value across a concurrency boundary whose safety the caller ensures
/// (here: `parallelFor` bodies touch disjoint memory per index).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
