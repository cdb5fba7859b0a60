import Dispatch
import Foundation
import Synchronization
#if canImport(Accelerate)
import Accelerate
#elseif canImport(CBLAS)
import CBLAS
#endif

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
        #if canImport(CBLAS) && !canImport(Accelerate)
        openblas_set_num_threads(Int32(value))
        #endif
    }

    /// The BLAS library in use and, for OpenBLAS, the CPU kernel it selected
    /// (e.g. "OpenBLAS 0.3.21 … core Prescott"), for benchmark reports.
    public static var blasDescription: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #elseif canImport(CBLAS)
        let config = String(cString: openblas_get_config())
        let core = String(cString: openblas_get_corename())
        return "\(config) core \(core)"
        #else
        return "naive"
        #endif
    }

    /// A warning when OpenBLAS fell back to a generic kernel on a CPU it did not
    /// recognise (OpenBLAS 0.3.21 picks "Prescott", SSE3 only, on CPUs newer than
    /// it, making GEMMs several times slower), with the setting that fixes it;
    /// nil when there is nothing to say, or when `OPENBLAS_CORETYPE` is already set.
    public static var blasAdvice: String? {
        #if canImport(CBLAS) && !canImport(Accelerate) && os(Linux)
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              String(cString: openblas_get_corename()).lowercased() == "prescott",
              let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpu.split(separator: "\n").first(where: { $0.hasPrefix("flags") })?.split(separator: " ")
        else { return nil }
        let core = flags.contains("avx512f") ? "SkylakeX" : flags.contains("avx2") ? "Haswell" : nil
        return core.map {
            "OpenBLAS is using its generic Prescott kernel on this CPU; setting OPENBLAS_CORETYPE=\($0) " +
                "makes matrix products several times faster"
        }
        #else
        return nil
        #endif
    }

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
