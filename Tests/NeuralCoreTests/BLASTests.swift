import Foundation
@testable import NeuralCore
import TestSupport
import XCTest

/// The automatic OpenBLAS core choice: the pure decision over every case, and the
/// in-process switch proven in child processes (a switch must happen before the
/// first product, so it cannot run inside this test process).
final class BLASCorePolicyTests: XCTestCase {
    static let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]
    static let avx512bf16 = avx512.union(["avx512_bf16"])
    static let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
    func decide(_ core: String, _ flags: Set<String>, _ environment: [String: String] = [:],
                available: @escaping (String) -> Bool = { _ in true }) -> BLASCorePolicy.Decision {
        BLASCorePolicy.decide(reportedCore: core, cpuFlags: flags, environment: environment, isAvailable: available)
    }

    func testGenericCoreOnABetterCPUSwitchesToTheBestCoreTheLibraryCarries() {
        XCTAssertEqual(decide("Prescott", Self.avx512), .switchTo("SkylakeX"))
        XCTAssertEqual(decide("Prescott", Self.avx512bf16), .switchTo("Cooperlake"))
        XCTAssertEqual(decide("Prescott", Self.avx512bf16, available: { $0 != "Cooperlake" }), .switchTo("SkylakeX"))
        XCTAssertEqual(decide("Prescott", Self.avx512, available: { $0 == "Haswell" }), .switchTo("Haswell"),
                       "an AVX-512 CPU with a library without AVX-512 kernels still gets the AVX2 one")
        XCTAssertEqual(decide("Prescott", Self.avx2), .switchTo("Haswell"))
        XCTAssertEqual(decide("Prescott", ["sse3", "avx"]), .switchTo("Sandybridge"))
        XCTAssertEqual(decide("prescott", Self.avx2), .switchTo("Haswell"), "core names in any case")
        for generic in ["Core2", "Nehalem", "Penryn", "Dunnington", "Atom", "Barcelona", "Sandybridge", "Bulldozer"] {
            XCTAssertEqual(decide(generic, Self.avx512), .switchTo("SkylakeX"), generic)
        }
    }

    func testNothingBetterKeepsTheCore() {
        XCTAssertEqual(decide("Prescott", ["sse3", "ssse3"]), .keep(.noBetterCore))
        XCTAssertEqual(decide("Prescott", Self.avx2, available: { _ in false }), .keep(.noBetterCore))
        XCTAssertEqual(decide("Prescott", ["avx", "avx2"]), .switchTo("Sandybridge"), "AVX2 without FMA is not Haswell")
    }

    func testFastCoresAreLeftAlone() {
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator"] {
            XCTAssertEqual(decide(core, Self.avx512bf16), .keep(.alreadyGood), core)
        }
        XCTAssertEqual(decide("Haswell", Self.avx2), .keep(.alreadyGood))
        for foreign in ["NEOVERSEN1", "ARMV8", "POWER9", "unknown-core"] {
            XCTAssertEqual(decide(foreign, []), .keep(.alreadyGood), foreign)
        }
    }

    func testAUsersCoreTypeAlwaysWins() {
        XCTAssertEqual(decide("Prescott", Self.avx512, ["OPENBLAS_CORETYPE": "Prescott"]), .keep(.userCoreType))
        XCTAssertEqual(decide("Prescott", Self.avx512, ["OPENBLAS_CORETYPE": "Haswell", "NEURALCORE_BLAS_CORE": "SkylakeX"]),
                       .keep(.userCoreType))
        XCTAssertEqual(decide("Prescott", Self.avx512, ["OPENBLAS_CORETYPE": ""]), .switchTo("SkylakeX"),
                       "an empty OPENBLAS_CORETYPE is unset")
    }

    func testTheOptOutVariable() {
        for off in ["off", "OFF", "0", "no", "false", "keep", " none "] {
            XCTAssertEqual(decide("Prescott", Self.avx512, ["NEURALCORE_BLAS_CORE": off]), .keep(.optedOut), off)
        }
        XCTAssertEqual(decide("Prescott", Self.avx512, ["NEURALCORE_BLAS_CORE": "auto"]), .switchTo("SkylakeX"))
        XCTAssertEqual(decide("Prescott", Self.avx512, ["NEURALCORE_BLAS_CORE": ""]), .switchTo("SkylakeX"))
        // A core name forces that core, even from a fast one (how the suite runs on a switched core).
        XCTAssertEqual(decide("Cooperlake", Self.avx512bf16, ["NEURALCORE_BLAS_CORE": "haswell"]), .switchTo("Haswell"))
        XCTAssertEqual(decide("Haswell", Self.avx512, ["NEURALCORE_BLAS_CORE": "Haswell"]), .keep(.alreadyGood))
        XCTAssertEqual(decide("Zen", Self.avx512, ["NEURALCORE_BLAS_CORE": "SkylakeX"], available: { $0 != "SkylakeX" }),
                       .keep(.noBetterCore))
        XCTAssertEqual(decide("Prescott", Self.avx512, ["NEURALCORE_BLAS_CORE": "Pentium4"]), .keep(.optedOut),
                       "an unknown name switches nothing")
    }

    func testAMDZen4MovesFromTheAVX512KernelsToZen() {
        let zen4 = BLASCorePolicy.CPUModel(vendor: "AuthenticAMD", family: 25)
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Cooperlake", cpuFlags: Self.avx512bf16, cpu: zen4, environment: [:],
                                             isAvailable: { _ in true }), .switchTo("Zen"))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "SkylakeX", cpuFlags: Self.avx512, cpu: zen4, environment: [:],
                                             isAvailable: { _ in true }), .switchTo("Zen"))
        // A generic core on Zen 4 goes straight to Zen; without Zen in the library, to the AVX-512 tier's best.
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Prescott", cpuFlags: Self.avx512bf16, cpu: zen4, environment: [:],
                                             isAvailable: { _ in true }), .switchTo("Zen"))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Prescott", cpuFlags: Self.avx512bf16, cpu: zen4, environment: [:],
                                             isAvailable: { $0 != "Zen" }), .switchTo("Cooperlake"))
        // Zen 3 (same family, no AVX-512), Intel, other AMD families, a library without Zen, the user's settings: unchanged.
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Zen", cpuFlags: Self.avx2, cpu: zen4, environment: [:],
                                             isAvailable: { _ in true }), .keep(.alreadyGood))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Zen", cpuFlags: Self.avx512bf16, cpu: zen4, environment: [:],
                                             isAvailable: { _ in true }), .keep(.alreadyGood))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Cooperlake", cpuFlags: Self.avx512bf16,
                                             cpu: .init(vendor: "GenuineIntel", family: 6), environment: [:],
                                             isAvailable: { _ in true }), .keep(.alreadyGood))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "SkylakeX", cpuFlags: Self.avx512,
                                             cpu: .init(vendor: "AuthenticAMD", family: 26), environment: [:],
                                             isAvailable: { _ in true }), .keep(.alreadyGood))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Cooperlake", cpuFlags: Self.avx512bf16, cpu: zen4, environment: [:],
                                             isAvailable: { $0 != "Zen" }), .keep(.alreadyGood))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Cooperlake", cpuFlags: Self.avx512bf16, cpu: zen4,
                                             environment: ["OPENBLAS_CORETYPE": "Cooperlake"], isAvailable: { _ in true }),
                       .keep(.userCoreType))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Cooperlake", cpuFlags: Self.avx512bf16, cpu: zen4,
                                             environment: ["NEURALCORE_BLAS_CORE": "off"], isAvailable: { _ in true }),
                       .keep(.optedOut))
        XCTAssertEqual(BLASCorePolicy.decide(reportedCore: "Cooperlake", cpuFlags: Self.avx512bf16, cpu: zen4,
                                             environment: ["NEURALCORE_BLAS_CORE": "Cooperlake"], isAvailable: { _ in true }),
                       .keep(.alreadyGood))
    }

    func testCPUModelFromProcCPUInfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nflags\t\t: fpu avx2\n\n"
            + "processor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
        XCTAssertEqual(BLASCorePolicy.cpuModel(fromCPUInfo: text), .init(vendor: "AuthenticAMD", family: 25))
        XCTAssertNil(BLASCorePolicy.cpuModel(fromCPUInfo: "processor\t: 0\nflags\t\t: fpu\n"))
        XCTAssertNil(BLASCorePolicy.cpuModel(fromCPUInfo: "vendor_id\t: AuthenticAMD\ncpu family\t: x\n"))
    }

    func testRowAlignmentOfTheCores() {
        for core in ["SkylakeX", "Cooperlake", "Sandybridge", "cooperlake"] {
            XCTAssertEqual(BLASCorePolicy.rowAlignment(core: core), 1, core)
        }
        for core in ["Haswell", "Zen", "Prescott", "Nehalem", "SapphireRapids", "Excavator", "unknown"] {
            XCTAssertEqual(BLASCorePolicy.rowAlignment(core: core), 12, core)
        }
    }

    func testCPUFlagsFromProcCPUInfo() {
        let text = """
            processor\t: 0
            vendor_id\t: GenuineIntel
            flags\t\t: fpu sse3 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16
            bugs\t\t: spectre_v1

            processor\t: 1
            flags\t\t: fpu
            """
        let flags = BLASCorePolicy.cpuFlags(fromCPUInfo: text)
        XCTAssertEqual(flags, ["fpu", "sse3", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16"])
        XCTAssertEqual(BLASCorePolicy.tier(of: flags), .avx512)
        XCTAssertEqual(BLASCorePolicy.cpuFlags(fromCPUInfo: "no flags here"), [])
        XCTAssertEqual(BLASCorePolicy.tableSymbol("SkylakeX"), "gotoblas_SKYLAKEX")
    }

    func testDescriptionNamesTheCoreInForceLast() {
        let description = BLAS.description
        print("BLAS: \(description)")
        // The suite run with a forced core (NEURALCORE_BLAS_CORE=Haswell swift test) runs on it.
        if let forced = ProcessInfo.processInfo.environment["NEURALCORE_BLAS_CORE"].flatMap(BLASCorePolicy.canonicalName),
           ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, BLAS.provider == "OpenBLAS" {
            XCTAssertEqual(BLAS.core, forced, description)
        }
        if let core = BLAS.core {
            XCTAssert(description.hasSuffix("core \(core)"), description)
            XCTAssertEqual(BLAS.coreSelection.chosen?.lowercased(), core.lowercased())
        }
        if BLAS.coreSelection.switched { XCTAssertNil(BLAS.advice, "no advice after a switch") }
    }
}

/// ``BLAS/rowAlignment``: through ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``
/// with `rowExact`, a row of a product comes out the same, bit for bit, in every product whose row
/// count is a multiple of the alignment, at every place with the same remainder,
/// at the same thread count (one, two): on the core in force here and, in a child
/// process, on OpenBLAS's Haswell kernel (alignment 12).
final class BLASRowAlignmentTests: XCTestCase {
    func testRowsAreTheSameInEveryProductOnTheCoreInForce() {
        assertRowsIndependentOfTheProduct("core \(BLAS.core ?? BLAS.provider)")
    }

    func testRowsAreTheSameInEveryProductOnTheHaswellKernel() throws {
        try assertPassesOnOpenBLASHaswellKernel("NeuralCoreTests.BLASCoreSwitchChild/testRowAlignmentOnHaswell")
    }
}

/// Rows of sub-products (row count a multiple of ``BLAS/rowAlignment``, first row
/// at a multiple of it; with alignment 1 also odd counts and places) against the
/// same rows of the whole 240-row product at the same thread count (1 and 2), bit
/// for bit; even 9 rows are above OpenBLAS's small-matrix bound and the library's
/// threshold for threads; A and B transposed or not.
func assertRowsIndependentOfTheProduct(_ label: String, file: StaticString = #filePath, line: UInt = #line) {
    let original = Threading.threadCount
    defer { Threading.setThreadCount(original) }
    let alignment = BLAS.rowAlignment, total = 240
    var cuts = [(0, 12), (12, 24), (60, 120), (12, 228), (0, 240)]
    if alignment == 1 { cuts += [(1, 9), (5, 50), (7, 233)] }
    for (n, k, transposeA, transposeB) in [(768, 768, false, true), (1024, 256, false, true), (512, 512, false, false),
                                           (640, 384, true, true)] {
        let a = [Float].random(total * k, seed: UInt64(n + k)), b = [Float].random(n * k, seed: UInt64(n))
        let (lda, ldb) = (transposeA ? total : k, transposeB ? k : n)
        for threads in [1, 2] {
            Threading.setThreadCount(threads)
            var whole = [Float](repeating: .nan, count: total * n)
            sgemm(transposeA: transposeA, transposeB: transposeB, m: total, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                  c: &whole, ldc: n, rowExact: true)
            for (start, rows) in cuts {
                var part = [Float](repeating: .nan, count: rows * n)
                a.withUnsafeBufferPointer { a in
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: rows, n: n, k: k,
                          a: a.baseAddress! + (transposeA ? start : start * k), lda: lda, b: b, ldb: ldb, c: &part, ldc: n,
                          rowExact: true)
                }
                XCTAssertEqual(part, Array(whole[(start * n)..<((start + rows) * n)]),
                               "\(label): rows \(start)..<\(start + rows) of \(total), \(n)×\(k), transposeA \(transposeA), "
                                   + "transposeB \(transposeB), \(threads) threads", file: file, line: line)
            }
        }
    }
}

/// Child processes of this test binary that switch OpenBLAS's core before their
/// first product (Linux, OpenBLAS only). The parent test runs one test method of
/// ``BLASCoreSwitchChild`` in a fresh process with `NEURALCORE_TEST_CHILD` set.
final class BLASCoreSwitchTests: XCTestCase {
    /// Runs `BLASCoreSwitchChild/<method>` in a child process with `environment`
    /// added, and fails with its output unless it passed.
    func runChild(_ method: String, environment: [String: String]) throws {
        #if os(Linux)
        guard BLAS.provider == "OpenBLAS", OpenBLASDynamicCore.hasCore("Prescott") else {
            throw XCTSkip("needs a DYNAMIC_ARCH OpenBLAS")
        }
        try assertPassesInChildProcess("NeuralCoreTests.BLASCoreSwitchChild/\(method)", environment: environment)
        #else
        throw XCTSkip("the in-process switch exists for OpenBLAS on Linux")
        #endif
    }

    func testSwitchingToAnotherCoreAndBackKeepsProductsExact() throws {
        try runChild("testSwitchToAnotherCoreAndBack", environment: ["NEURALCORE_BLAS_CORE": "off"])
    }

    func testAGenericCoreIsReplacedAutomaticallyBeforeTheFirstProduct() throws {
        try runChild("testAutomaticChoiceFromGenericCore", environment: [:])
    }

    func testTheForcingVariableSwitchesAtFirstUse() throws {
        try runChild("testForcedCoreAtFirstUse", environment: ["NEURALCORE_BLAS_CORE": "Prescott"])
    }
}

/// The child side of ``BLASCoreSwitchTests``: each test skips unless it is the one
/// the parent started (`NEURALCORE_TEST_CHILD`).
final class BLASCoreSwitchChild: XCTestCase {
    func onlyInChild(_ name: String = #function) throws {
        let method = String(name.prefix { $0 != "(" })
        guard ProcessInfo.processInfo.environment["NEURALCORE_TEST_CHILD"] == method else {
            throw XCTSkip("runs in a child process started by BLASCoreSwitchTests")
        }
    }

    /// sgemm (the BLAS path and the library's dispatch) against the naive twin over
    /// shapes that reach OpenBLAS's blocked kernels and its threads.
    func assertProductsMatchNaive(_ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        for threads in [1, 2] {
            Threading.setThreadCount(threads)
            for (m, n, k) in [(257, 1024, 256), (64, 77, 65), (3, 768, 768), (1, 300, 512)] {
                let a = [Float].random(m * k, seed: UInt64(m + n)), b = [Float].random(n * k, seed: UInt64(k))
                var c = [Float](repeating: .nan, count: m * n), blas = c, expected = c
                sgemm(transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &c, ldc: n)
                sgemmBLAS(transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &blas, ldc: n)
                sgemmNaive(transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &expected, ldc: n)
                assertNMSE(c, expected, "\(label): sgemm \(m)×\(n)×\(k), \(threads) threads", file: file, line: line)
                assertNMSE(blas, expected, "\(label): BLAS sgemm \(m)×\(n)×\(k), \(threads) threads", file: file, line: line)
            }
        }
    }

    /// A core this CPU runs that differs from `core`.
    func anotherCore(than core: String) -> String {
        #if os(Linux)
        let flags = BLASCorePolicy.cpuFlags(fromCPUInfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
        if core.lowercased() != "haswell" && BLASCorePolicy.tier(of: flags) >= .avx2 && OpenBLASDynamicCore.hasCore("Haswell") {
            return "Haswell"
        }
        #endif
        return core.lowercased() == "prescott" ? "Core2" : "Prescott"
    }

    func testSwitchToAnotherCoreAndBack() throws {
        try onlyInChild()
        #if os(Linux)
        let start = try XCTUnwrap(BLAS.core)
        XCTAssertFalse(BLAS.coreSelection.switched, "NEURALCORE_BLAS_CORE=off keeps OpenBLAS's own choice")
        assertProductsMatchNaive("default core \(start)")
        let other = anotherCore(than: start)
        XCTAssert(OpenBLASDynamicCore.switchCore(to: other), "switch \(start) → \(other)")
        XCTAssertEqual(BLAS.currentCore, other)
        XCTAssertEqual(BLAS.core, other)
        XCTAssertNil(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], "the environment is left as it was")
        assertProductsMatchNaive("switched to \(other)")
        XCTAssert(OpenBLASDynamicCore.switchCore(to: start), "switch back \(other) → \(start)")
        XCTAssertEqual(BLAS.core, start)
        assertProductsMatchNaive("back on \(start)")
        #endif
    }

    func testAutomaticChoiceFromGenericCore() throws {
        try onlyInChild()
        #if os(Linux)
        // Put OpenBLAS where 0.3.21 lands on a CPU it does not know, before anything touches `BLAS`.
        XCTAssert(OpenBLASDynamicCore.switchCore(to: "Prescott"))
        let selection = BLAS.coreSelection // the automatic choice runs now, on first use
        XCTAssertEqual(selection.reported, "Prescott")
        let flags = BLASCorePolicy.cpuFlags(fromCPUInfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
        if BLASCorePolicy.tier(of: flags) > .sse {
            XCTAssert(selection.switched, "a generic core on a \(BLASCorePolicy.tier(of: flags)) CPU is replaced: \(selection)")
            XCTAssertEqual(BLAS.core, selection.chosen)
            XCTAssertNotEqual(BLAS.core, "Prescott")
            XCTAssertNil(BLAS.advice)
            XCTAssert(BLAS.description.contains("switched from Prescott"), BLAS.description)
        }
        assertProductsMatchNaive("automatic choice \(BLAS.core ?? "?")")
        #endif
    }

    /// Haswell needs the alignment: without it (plain BLAS calls) a row's sums
    /// change with its place in the product; through `sgemm`, aligned, they do not.
    func testRowAlignmentOnHaswell() throws {
        try onlyInChild()
        XCTAssertEqual(BLAS.core, "Haswell", "\(BLAS.coreSelection)")
        XCTAssertEqual(BLAS.rowAlignment, 12)
        let (m, n, k) = (24, 768, 768)
        let a = [Float].random((m + 6) * k, seed: 1), b = [Float].random(n * k, seed: 2)
        var first = [Float](repeating: .nan, count: m * n), shifted = [Float](repeating: .nan, count: (m + 6) * n)
        sgemmBLAS(transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &first, ldc: n)
        sgemmBLAS(transposeB: true, m: m + 6, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &shifted, ldc: n)
        XCTAssertEqual(first, Array(shifted[0..<(m * n)]), "the same places in a product of 6 more rows agree…")
        a.withUnsafeBufferPointer { a in
            sgemmBLAS(transposeB: true, m: m, n: n, k: k, a: a.baseAddress! + 6 * k, lda: k, b: b, ldb: k, c: &first, ldc: n)
        }
        XCTAssertNotEqual(first, Array(shifted[(6 * n)..<((m + 6) * n)]), "…six places further on they do not")
        assertRowsIndependentOfTheProduct("Haswell")
    }

    func testForcedCoreAtFirstUse() throws {
        try onlyInChild()
        #if os(Linux)
        let selection = BLAS.coreSelection
        XCTAssertEqual(BLAS.core, "Prescott", "\(selection)")
        XCTAssertEqual(selection.switched, selection.reported != "Prescott")
        XCTAssert(BLAS.description.hasSuffix("core Prescott"), BLAS.description)
        assertProductsMatchNaive("forced Prescott")
        #endif
    }
}
