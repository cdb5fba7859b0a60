// The BLAS seam: the one file that knows which BLAS library the package links
// (OpenBLAS through the CBLAS system-library target on Linux, Accelerate on Apple
// platforms, plain Swift loops where neither exists). Every `#if` on the provider,
// every provider-specific call and the provider's description live here; the
// rest of NeuralCore calls `BLAS.sgemm`/`BLAS.sgemv` through `sgemm(…)`.
//
// To add a provider: a system-library target like `Sources/CBLAS` (module map +
// header), its `canImport` branch in each function below (product calls, thread
// count, description, core), and its dependency in Package.swift.
#if canImport(Accelerate)
import Accelerate
#elseif canImport(CBLAS)
import CBLAS
#endif
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS library under the matrix products: what it is, which CPU kernel it
/// runs, and the calls the rest of NeuralCore makes into it.
///
/// With OpenBLAS, the kernel ("core") is checked once, before the first product:
/// where OpenBLAS fell back to a generic kernel on a CPU it does not know (Debian's
/// 0.3.21 runs its SSE3 "Prescott" kernel on current AVX-512 Xeons, 4–5× slower),
/// the process switches to the best kernel the CPU supports (see
/// ``coreSelection``). A user's `OPENBLAS_CORETYPE` always wins;
/// `NEURALCORE_BLAS_CORE=off` turns the choice off, and `NEURALCORE_BLAS_CORE=<core>`
/// switches to a named core instead. OpenBLAS is kept at one thread: ``Threading``
/// splits large products between its own threads.
public enum BLAS {
    /// The library's name: "OpenBLAS", "Accelerate", or "none" (plain Swift loops).
    public static var provider: String {
        #if canImport(Accelerate)
        "Accelerate"
        #elseif canImport(CBLAS)
        "OpenBLAS"
        #else
        "none"
        #endif
    }

    /// The CPU kernel in force: OpenBLAS's core name (e.g. "SkylakeX"), or nil for
    /// a provider without selectable kernels.
    public static var core: String? {
        _ = state
        return currentCore
    }

    /// How the kernel in force was chosen (OpenBLAS: what it picked by itself,
    /// and whether this process switched).
    public static var coreSelection: BLASCoreSelection { state }

    /// One line for logs, `--version` and benchmark reports: the provider's build
    /// configuration, how the kernel was chosen, and, last, `core <name>`, e.g.
    /// "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64;
    /// automatic choice: switched from Prescott (AVX-512 CPU); core SkylakeX".
    public static var description: String {
        #if canImport(Accelerate)
        _ = state
        return "Accelerate"
        #elseif canImport(CBLAS)
        let selection = state // first: the configuration names the core in force, so read it after the choice
        let config = String(cString: openblas_get_config())
        return "\(config); automatic choice: \(selection.note); core \(currentCore ?? "unknown")"
        #else
        _ = state
        return "none (Swift loops)"
        #endif
    }

    /// A hint when OpenBLAS runs a generic kernel that this process did not
    /// replace (the automatic choice is turned off, or the switch failed), naming
    /// the `OPENBLAS_CORETYPE` that would be faster; nil otherwise.
    public static var advice: String? {
        let selection = state
        guard let better = selection.better, !selection.switched,
              let reported = selection.reported, let tier = BLASCorePolicy.tiers[reported.lowercased()], tier < .avx2
        else { return nil }
        return "OpenBLAS is using its generic \(reported) kernel on this CPU (\(selection.note)); "
            + "OPENBLAS_CORETYPE=\(better) makes matrix products several times faster"
    }

    /// The row alignment that makes the kernel in force compute a row of a product
    /// the same in every product with the same columns and depth: 1 where a row's
    /// sums never depend on the product's row count or the row's place in it
    /// (OpenBLAS's AVX-512 kernels SkylakeX and Cooperlake, its Sandybridge
    /// kernel, the Swift loops); 12 for OpenBLAS's other kernels, which sum rows
    /// in blocks of 12 whose two halves, and the remainder blocks, sum differently,
    /// and sum a row differently again when its columns are split differently.
    /// There, ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``
    /// with `rowExact` splits a product between threads along the columns only, at
    /// places fixed by `N` and the thread count, so a row's result is the same in
    /// any such product with the same `N`, `K` and thread count whose row count is
    /// a multiple of 12, at any place with the same remainder modulo 12. Batched
    /// towers lay each sequence out at a multiple of this many rows and use such
    /// products, so that a batch equals its sequences one at a time, bit for bit.
    /// (`BLASCorePolicy.rowAlignment(core:)` says how the cores were checked;
    /// with Accelerate this is 1, not verified.)
    public static var rowAlignment: Int {
        #if canImport(CBLAS) && !canImport(Accelerate)
        BLASCorePolicy.rowAlignment(core: core ?? "unknown")
        #else
        1
        #endif
    }

    // MARK: - Calls

    /// `C = alpha · op(A) · op(B) + beta · C`, row-major, through the provider
    /// (see ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``).
    static func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = state
        #if canImport(Accelerate) || canImport(CBLAS)
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #else
        sgemmNaive(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        #endif
    }

    /// `y = alpha · A · x + beta · y` for a row-major `A` `[rows, cols]` with row
    /// stride `lda`, contiguous `x` `[cols]` and `y` `[rows]`.
    static func sgemv(rows: Int, cols: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                      x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        _ = state
        #if canImport(Accelerate) || canImport(CBLAS)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(cols), alpha, a, Int32(lda), x, 1, beta, y, 1)
        #else
        sgemmNaive(m: rows, n: 1, k: cols, alpha: alpha, a: a, lda: lda, b: x, ldb: 1, beta: beta, c: y, ldc: 1)
        #endif
    }

    /// Whether each call runs on the calling thread alone, so that
    /// ``Threading`` may split large products between its own threads (OpenBLAS,
    /// which is kept at one thread; the Swift loops). Accelerate threads inside.
    static var runsSingleThreaded: Bool {
        #if canImport(Accelerate)
        false
        #else
        true
        #endif
    }

    /// Applies the library's thread count to the provider: OpenBLAS stays at one
    /// thread (``Threading`` splits the products, so no OpenBLAS pool spins
    /// beside the Swift loops); Accelerate manages its own.
    static func setThreadCount(_ count: Int) {
        _ = state
        #if canImport(CBLAS) && !canImport(Accelerate)
        openblas_set_num_threads(1)
        #endif
    }

    // MARK: - The kernel choice

    /// The choice, made once, on first use of anything above.
    private static let state: BLASCoreSelection = chooseCore()

    /// The provider's current core name, read live.
    static var currentCore: String? {
        #if canImport(CBLAS) && !canImport(Accelerate)
        String(cString: openblas_get_corename())
        #else
        nil
        #endif
    }

    /// Applies ``BLASCorePolicy`` to this process (OpenBLAS on Linux only), and
    /// keeps OpenBLAS at one thread (see ``setThreadCount(_:)``).
    private static func chooseCore() -> BLASCoreSelection {
        #if canImport(CBLAS) && !canImport(Accelerate)
        openblas_set_num_threads(1)
        #endif
        #if canImport(CBLAS) && !canImport(Accelerate) && os(Linux)
        let reported = currentCore ?? "unknown"
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = BLASCorePolicy.cpuFlags(fromCPUInfo: cpuInfo), cpu = BLASCorePolicy.cpuModel(fromCPUInfo: cpuInfo)
        let environment = ProcessInfo.processInfo.environment
        let isAvailable = { (core: String) in OpenBLASDynamicCore.hasCore(core) }
        // The core a user could set by hand when the process keeps a generic one.
        var unswitched = environment
        unswitched[BLASCorePolicy.optOutVariable] = nil
        unswitched["OPENBLAS_CORETYPE"] = nil
        let better: String? = if case let .switchTo(core) = BLASCorePolicy.decide(
            reportedCore: reported, cpuFlags: flags, cpu: cpu, environment: unswitched, isAvailable: isAvailable) { core } else { nil }
        switch BLASCorePolicy.decide(reportedCore: reported, cpuFlags: flags, cpu: cpu, environment: environment,
                                     isAvailable: isAvailable) {
        case let .keep(reason):
            return BLASCoreSelection(reported: reported, chosen: reported, note: "kept (\(reason.rawValue))",
                                     better: reason == .userCoreType ? nil : better)
        case let .switchTo(core):
            let tier = BLASCorePolicy.tier(of: flags)
            let why = environment[BLASCorePolicy.optOutVariable].map { "\(BLASCorePolicy.optOutVariable)=\($0)" }
                ?? (BLASCorePolicy.isZen4(cpu, flags: flags) ? "AMD Zen 4, faster with AVX2 kernels"
                    : tier == .avx512 ? "AVX-512 CPU" : tier == .avx2 ? "AVX2 CPU" : "AVX CPU")
            if OpenBLASDynamicCore.switchCore(to: core) {
                return BLASCoreSelection(reported: reported, chosen: core, note: "switched from \(reported) (\(why))",
                                         better: better)
            }
            // Back to where OpenBLAS started if the switch left another core in force.
            if currentCore?.lowercased() != reported.lowercased() { _ = OpenBLASDynamicCore.switchCore(to: reported) }
            return BLASCoreSelection(reported: reported, chosen: currentCore, note: "switch to \(core) failed, kept \(reported)",
                                     better: better)
        }
        #else
        return BLASCoreSelection(reported: currentCore, chosen: currentCore, note: "not applicable", better: nil)
        #endif
    }
}

/// How the BLAS kernel in force was chosen (see ``BLAS/coreSelection``).
public struct BLASCoreSelection: Sendable, Equatable, CustomStringConvertible {
    /// The core the provider picked by itself (nil: no selectable kernels).
    public let reported: String?
    /// The core the automatic choice left in force.
    public let chosen: String?
    /// A short account: "kept (already a fast core)", "switched from Prescott
    /// (AVX-512 CPU)", "kept (OPENBLAS_CORETYPE is set)", ….
    public let note: String
    /// The core the automatic choice would pick with no settings in the
    /// environment, when it differs from the reported one (nil otherwise).
    public let better: String?

    /// Whether this process switched away from the reported core.
    public var switched: Bool { chosen != reported }

    /// ``note``.
    public var description: String { note }
}

#if canImport(CBLAS) && !canImport(Accelerate) && os(Linux)
/// The in-process switch of a `DYNAMIC_ARCH` OpenBLAS: `gotoblas_dynamic_quit()`
/// drops the kernel table, `gotoblas_dynamic_init()` picks one again and reads
/// `OPENBLAS_CORETYPE` when it does. Both are exported by OpenBLAS's dynamic
/// builds (not declared in its headers), so they are looked up at run time and a
/// build without them simply cannot switch.
///
/// Only safe while no product runs: ``BLAS`` calls it once, inside the lazy
/// initialisation that every BLAS call waits for.
enum OpenBLASDynamicCore {
    private typealias Entry = @convention(c) () -> Void

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        guard let handle = dlopen(nil, RTLD_NOW) else { return nil }
        defer { dlclose(handle) }
        return dlsym(handle, name)
    }

    /// Whether the library carries `core`'s kernels.
    static func hasCore(_ core: String) -> Bool {
        symbol(BLASCorePolicy.tableSymbol(core)) != nil
    }

    /// Switches to `core`; true when OpenBLAS then reports it. The environment is
    /// left as it was (`OPENBLAS_CORETYPE` is set only around the re-initialisation).
    static func switchCore(to core: String) -> Bool {
        guard let quit = symbol("gotoblas_dynamic_quit"), let initialise = symbol("gotoblas_dynamic_init") else { return false }
        let previous = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        setenv("OPENBLAS_CORETYPE", core, 1)
        unsafeBitCast(quit, to: Entry.self)()
        unsafeBitCast(initialise, to: Entry.self)()
        if let previous { setenv("OPENBLAS_CORETYPE", previous, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        return String(cString: openblas_get_corename()).lowercased() == core.lowercased()
    }
}
#endif
