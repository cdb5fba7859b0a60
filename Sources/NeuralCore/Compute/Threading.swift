import Dispatch
import Foundation
import Synchronization

/// The one setting for how many threads the library computes with: OpenBLAS's
/// GEMM threads and the Swift kernels' parallel loops alike.
public enum Threading {
    private static let configured = Atomic<Int>(0)

    /// The number of threads in use (by default the number of active processors).
    public static var threadCount: Int {
        let value = configured.load(ordering: .relaxed)
        return value > 0 ? value : ProcessInfo.processInfo.activeProcessorCount
    }

    /// Sets the number of threads for BLAS and the Swift kernels (clamped to ≥ 1).
    public static func setThreadCount(_ count: Int) {
        let value = max(1, count)
        configured.store(value, ordering: .relaxed)
        BLAS.setThreadCount(value)
    }

    /// ``BLAS/description``: the BLAS library, how its CPU kernel was chosen and
    /// the kernel in force (ends with "core <name>"), for reports.
    public static var blasDescription: String { BLAS.description }

    /// ``BLAS/advice``: a hint when OpenBLAS runs a generic kernel this process
    /// did not replace; nil when there is nothing to say (in particular after
    /// the automatic switch, or when `OPENBLAS_CORETYPE` is set).
    public static var blasAdvice: String? { BLAS.advice }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over at most
    /// ``threadCount`` threads in contiguous blocks. Runs inline when there is a
    /// single thread or a single item.
    public static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        let threads = min(threadCount, count)
        if threads <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { part in
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
