import Dispatch
import Foundation
import NeuralCore
import Synchronization
import TestSupport
import XCTest

/// Each optimised kernel against its naive twin over a sweep of shapes, odd sizes
/// included; normalised MSE ≤ 1e-10.
final class KernelTests: XCTestCase {
    static let sizes = [1, 3, 17, 77, 257, 577, 1025]

    func testGEMMMatchesNaiveTwin() {
        var seed: UInt64 = 1
        for m in Self.sizes {
            for n in [1, 17, 77, 257] {
                for k in [1, 3, 64, 257] where m * n * k <= 2_000_000 {
                    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                        seed += 1
                        let a = [Float].random(m * k, seed: seed), b = [Float].random(k * n, seed: seed + 1000)
                        var c = [Float].random(m * n, seed: seed + 2000)
                        var expected = c
                        let lda = ta ? m : k, ldb = tb ? k : n
                        sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                              b: b, ldb: ldb, beta: 0.25, c: &c, ldc: n)
                        sgemmNaive(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                                   b: b, ldb: ldb, beta: 0.25, c: &expected, ldc: n)
                        assertNMSE(c, expected, "sgemm m=\(m) n=\(n) k=\(k) tA=\(ta) tB=\(tb)")
                    }
                }
            }
        }
    }

    func testSkinnyGEMMMatchesNaiveTwin() {
        var seed: UInt64 = 7
        for m in 1...skinnyMaxRows {
            for n in [1, 5, 11, 12, 13, 25, 100] {
                for k in [1, 3, 4, 7, 64, 65, 203] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 0.25)] {
                        seed += 1
                        // Strided operands: rows wider than the product reads.
                        let (ldx, ldw, ldy) = (k + 3, k + 1, n + 2)
                        let x = [Float].random(m * ldx, seed: seed), w = [Float].random(n * ldw, seed: seed + 1)
                        var y = [Float].random(m * ldy, seed: seed + 2)
                        if beta == 0 { for i in y.indices { y[i] = .nan } }
                        var expected = y
                        skinnyGEMM(&y, ldy: ldy, x, ldx: ldx, weight: w, ldw: ldw, m: m, n: n, k: k, alpha: alpha, beta: beta)
                        skinnyGEMMNaive(&expected, ldy: ldy, x, ldx: ldx, weight: w, ldw: ldw, m: m, n: n, k: k,
                                        alpha: alpha, beta: beta)
                        for r in 0..<m { for c in n..<ldy { y[r * ldy + c] = 0; expected[r * ldy + c] = 0 } }
                        assertNMSE(y, expected, "skinnyGEMM m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta)")

                        var z = [Float].random(m * ldy, seed: seed + 3)
                        if beta == 0 { for i in z.indices { z[i] = .nan } }
                        var expectedZ = z
                        let b = [Float].random(k * ldy, seed: seed + 4) // [K, N], row stride ldy
                        skinnyGEMMNN(&z, ldy: ldy, x, ldx: ldx, b: b, ldb: ldy, m: m, n: n, k: k, alpha: alpha, beta: beta)
                        skinnyGEMMNNNaive(&expectedZ, ldy: ldy, x, ldx: ldx, b: b, ldb: ldy, m: m, n: n, k: k,
                                          alpha: alpha, beta: beta)
                        for r in 0..<m { for c in n..<ldy { z[r * ldy + c] = 0; expectedZ[r * ldy + c] = 0 } }
                        assertNMSE(z, expectedZ, "skinnyGEMMNN m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta)")
                    }
                }
            }
        }
    }

    /// A row's result does not depend on the other rows of the product (so a batch
    /// of up to eight rows equals its rows one at a time, bit for bit).
    func testSkinnyGEMMRowsEqualThemOneAtATime() {
        for (n, k) in [(25, 203), (100, 64), (777, 512)] {
            let w = [Float].random(n * k, seed: UInt64(n)), b = [Float].random(k * n, seed: UInt64(k))
            for m in 2...skinnyMaxRows {
                let x = [Float].random(m * k, seed: UInt64(m))
                var together = [Float](repeating: .nan, count: m * n), togetherNN = together
                sgemm(transposeB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &together, ldc: n)
                sgemm(m: m, n: n, k: k, a: x, lda: k, b: b, ldb: n, c: &togetherNN, ldc: n)
                for r in 0..<m {
                    let row = Array(x[(r * k)..<((r + 1) * k)])
                    var alone = [Float](repeating: .nan, count: n), aloneNN = alone
                    sgemm(transposeB: true, m: 1, n: n, k: k, a: row, lda: k, b: w, ldb: k, c: &alone, ldc: n)
                    sgemm(m: 1, n: n, k: k, a: row, lda: k, b: b, ldb: n, c: &aloneNN, ldc: n)
                    XCTAssertEqual(Array(together[(r * n)..<((r + 1) * n)]), alone, "x·Wᵀ row \(r) of \(m), n=\(n) k=\(k)")
                    XCTAssertEqual(Array(togetherNN[(r * n)..<((r + 1) * n)]), aloneNN, "x·B row \(r) of \(m), n=\(n) k=\(k)")
                }
            }
        }
    }

    func testSkinnyGEMMSplitsColumnsBetweenThreadsExactly() {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        // One row (the strided six-row tile) and three (the 3 × 3 tile); n·k above
        // the threshold for threads.
        for m in [1, 3] {
            let (n, k) = (777, 512)
            let x = [Float].random(m * k, seed: 1), w = [Float].random(n * k, seed: 2)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                Threading.setThreadCount(threads)
                var y = [Float](repeating: .nan, count: m * n)
                sgemm(transposeB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &y, ldc: n)
                results.append(y)
            }
            var expected = [Float](repeating: 0, count: m * n)
            skinnyGEMMNaive(&expected, ldy: n, x, ldx: k, weight: w, ldw: k, m: m, n: n, k: k)
            assertNMSE(results[0], expected, "skinny through sgemm, m=\(m)")
            XCTAssertEqual(results[0], results[1], "the same sums whatever the thread count, m=\(m)")
            XCTAssertEqual(results[0], results[2], "the same sums whatever the thread count, m=\(m)")
        }
    }

    func testLinearMatchesNaiveTwin() {
        for rows in Self.sizes {
            for (inF, outF) in [(3, 17), (17, 3), (77, 77), (64, 257)] where rows * inF * outF <= 8_000_000 {
                let x = [Float].random(rows * inF, seed: UInt64(rows * 7 + inF))
                let w = [Float].random(outF * inF, seed: UInt64(outF * 13 + inF))
                let b = [Float].random(outF, seed: UInt64(outF))
                for withBias in [true, false] {
                    var y = [Float](repeating: .nan, count: rows * outF), expected = y
                    b.withUnsafeBufferPointer { bias in
                        linearForward(&y, x, weight: w, bias: withBias ? bias.baseAddress : nil,
                                      rows: rows, inFeatures: inF, outFeatures: outF)
                        linearForwardNaive(&expected, x, weight: w, bias: withBias ? bias.baseAddress : nil,
                                           rows: rows, inFeatures: inF, outFeatures: outF)
                    }
                    assertNMSE(y, expected, "linear rows=\(rows) \(inF)→\(outF) bias=\(withBias)")
                }
            }
        }
    }

    func testLayerNormMatchesNaiveTwin() {
        for rows in [1, 3, 17, 77] {
            for cols in Self.sizes {
                let x = [Float].random(rows * cols, in: -5...5, seed: UInt64(rows * 1000 + cols))
                let w = [Float].random(cols, seed: UInt64(cols)), b = [Float].random(cols, seed: UInt64(cols + 1))
                var y = [Float](repeating: .nan, count: x.count), expected = y
                layerNorm(&y, x, weight: w, bias: b, rows: rows, cols: cols, eps: 1e-5)
                layerNormNaive(&expected, x, weight: w, bias: b, rows: rows, cols: cols, eps: 1e-5)
                // A single column normalises to exactly 0 (then bias): compare absolutely.
                if cols == 1 { assertClose(y, expected, tolerance: 1e-6, "layerNorm \(rows)×1") } else {
                    assertNMSE(y, expected, "layerNorm \(rows)×\(cols)")
                }
            }
        }
        // In place (y aliasing x).
        var x = [Float].random(3 * 257, seed: 9)
        let w = [Float].random(257, seed: 10), b = [Float].random(257, seed: 11)
        var expected = x
        layerNormNaive(&expected, x, weight: w, bias: b, rows: 3, cols: 257, eps: 1e-12)
        x.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, $0.baseAddress!, weight: w, bias: b, rows: 3, cols: 257, eps: 1e-12) }
        assertNMSE(x, expected, "layerNorm in place")
    }

    func testSoftmaxMatchesNaiveTwin() {
        let masks: [SoftmaxMask] = [.none, SoftmaxMask(causalOffset: 0), SoftmaxMask(causalOffset: 5),
                                    SoftmaxMask(validColumns: 1), SoftmaxMask(causalOffset: 2, validColumns: 9)]
        for rows in [1, 3, 17, 77] {
            for cols in Self.sizes {
                for mask in masks {
                    let x = [Float].random(rows * cols, in: -20...20, seed: UInt64(rows * 31 + cols))
                    var y = x, expected = x
                    softmaxRows(&y, rows: rows, cols: cols, mask: mask)
                    softmaxRowsNaive(&expected, rows: rows, cols: cols, mask: mask)
                    assertNMSE(y, expected, "softmax \(rows)×\(cols) \(mask)")
                    for r in 0..<rows {
                        let visible = mask.visibleColumns(row: r, cols: cols)
                        XCTAssert(y[(r * cols + visible)..<(r * cols + cols)].allSatisfy { $0 == 0 }, "masked entries are exact zeros")
                    }
                }
            }
        }
    }

    func testActivationsMatchNaiveTwins() {
        for count in Self.sizes + [100_003] {
            let x = [Float].random(count, in: -12...12, seed: UInt64(count))
            for activation in [Activation.gelu, .geluTanh, .quickGELU] {
                var y = x, expected = x
                activate(&y, count: count, activation)
                activateNaive(&expected, count: count, activation)
                assertNMSE(y, expected, "\(activation) n=\(count)")
            }
        }
    }

    func testFusedBiasActivationAndLayerNormMatchNaiveTwins() {
        for rows in [1, 3, 17] {
            for cols in [1, 7, 8, 9, 77, 1025] {
                let x = [Float].random(rows * cols, in: -6...6, seed: UInt64(rows * 100 + cols))
                let bias = [Float].random(cols, seed: UInt64(cols + 7))
                for activation in [Activation.gelu, .geluTanh, .quickGELU] {
                    for withBias in [true, false] {
                        var y = x, expected = x
                        bias.withUnsafeBufferPointer { b in
                            addBiasAndActivate(&y, bias: withBias ? b.baseAddress : nil, rows: rows, cols: cols, activation)
                            addBiasAndActivateNaive(&expected, bias: withBias ? b.baseAddress : nil, rows: rows, cols: cols, activation)
                        }
                        assertNMSE(y, expected, "bias+\(activation) \(rows)×\(cols) bias=\(withBias)")
                    }
                }
                let w = [Float].random(cols, seed: 3), b = [Float].random(cols, seed: 4)
                for withAddend in [true, false] {
                    // Strided rows: the stream and the output wider than the normalised width.
                    let (ldx, ldy) = (cols + 3, cols + 1)
                    var stream = [Float].random(rows * ldx, in: -5...5, seed: UInt64(cols)), y = [Float](repeating: .nan, count: rows * ldy)
                    var packed = (0..<rows).flatMap { stream[($0 * ldx)..<($0 * ldx + cols)] }
                    var expected = [Float](repeating: .nan, count: rows * cols)
                    bias.withUnsafeBufferPointer { addend in
                        layerNormAddingBias(&y, ldy: ldy, &stream, ldx: ldx, addend: withAddend ? addend.baseAddress : nil,
                                            weight: w, bias: b, rows: rows, cols: cols, eps: 1e-5)
                        layerNormAddingBiasNaive(&expected, &packed, addend: withAddend ? addend.baseAddress : nil,
                                                 weight: w, bias: b, rows: rows, cols: cols, eps: 1e-5)
                    }
                    let normalised = (0..<rows).flatMap { y[($0 * ldy)..<($0 * ldy + cols)] }
                    let updated = (0..<rows).flatMap { stream[($0 * ldx)..<($0 * ldx + cols)] }
                    if cols == 1 { assertClose(normalised, expected, tolerance: 1e-6, "LN+bias \(rows)×1") } else {
                        assertNMSE(normalised, expected, "LN+bias \(rows)×\(cols) addend=\(withAddend)")
                    }
                    assertNMSE(updated, packed, "LN+bias stream \(rows)×\(cols) addend=\(withAddend)")
                }
            }
        }
    }

    /// The eight-lane functions give each lane exactly the scalar function's value.
    func testVectorFunctionsEqualScalarOnes() {
        let x = [Float].random(8 * 4096, in: -100...100, seed: 5) + [-87.4, -87.33, 0, -0.0, 88.37, 88.5, 1e-30, -1e-30]
        for start in stride(from: 0, to: x.count, by: 8) {
            let v = x.withUnsafeBufferPointer { loadVector($0.baseAddress! + start) }
            let (e, erf, tanh) = (fastExp(v), fastErf(v), fastTanh(v))
            for lane in 0..<8 {
                XCTAssertEqual(e[lane].bitPattern, fastExp(v[lane]).bitPattern, "exp(\(v[lane]))")
                XCTAssertEqual(erf[lane].bitPattern, fastErf(v[lane]).bitPattern, "erf(\(v[lane]))")
                XCTAssertEqual(tanh[lane].bitPattern, fastTanh(v[lane]).bitPattern, "tanh(\(v[lane]))")
            }
        }
    }

    /// Large products split between threads (along columns or rows, any transposes)
    /// equal the naive twin.
    func testSplitGEMMMatchesNaiveTwin() {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        for (m, n, k) in [(300, 33, 257), (33, 300, 257), (129, 130, 300)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = [Float].random(m * k, seed: UInt64(m)), b = [Float].random(k * n, seed: UInt64(n))
                let lda = ta ? m : k, ldb = tb ? k : n
                var expected = [Float].random(m * n, seed: 9)
                let start = expected
                sgemmNaive(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                           b: b, ldb: ldb, beta: 0.25, c: &expected, ldc: n)
                for threads in [1, 2, 3] {
                    Threading.setThreadCount(threads)
                    var c = start
                    sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                          b: b, ldb: ldb, beta: 0.25, c: &c, ldc: n)
                    assertNMSE(c, expected, "split sgemm \(m)×\(n)×\(k) tA=\(ta) tB=\(tb), \(threads) threads")
                }
            }
        }
        // One row against large weights: the GEMV split by rows.
        let (n, k) = (1000, 300)
        let x = [Float].random(k, seed: 1), w = [Float].random(n * k, seed: 2)
        var expected = [Float](repeating: 0, count: n)
        sgemmNaive(transposeB: true, m: 1, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &expected, ldc: n)
        for threads in [1, 2, 3] {
            Threading.setThreadCount(threads)
            var y = [Float](repeating: .nan, count: n)
            sgemm(transposeB: true, m: 1, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &y, ldc: n)
            assertNMSE(y, expected, "GEMV \(threads) threads")
        }
    }

    func testFastExpAcrossRange() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let relative = abs(Double(fastExp(x)) - exp(Double(x))) / exp(Double(x))
            worst = max(worst, relative)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7, "fastExp relative error")
        XCTAssertEqual(fastExp(0), 1)
    }

    /// The rational `fastErf` keeps the error its fit reports (Weights/fixtures/fit_erf.py:
    /// 3.2e-7), is odd, and is exactly 0 at 0 and ±1 in the tails.
    func testFastErfAcrossRange() {
        var worst: Double = 0
        var x: Float = -6
        while x < 6 {
            worst = max(worst, abs(Double(fastErf(x)) - erf(Double(x))))
            XCTAssertEqual(fastErf(-x), -fastErf(x), "erf(\(x)) is odd")
            x += 0.000_37
        }
        XCTAssertLessThan(worst, 3.3e-7, "fastErf absolute error")
        XCTAssertEqual(fastErf(0), 0)
        XCTAssertEqual(fastErf(4), 1)
        XCTAssertEqual(fastErf(-100), -1)
    }

    func testElementwiseMatchNaiveTwins() {
        for rows in [1, 3, 17] {
            for cols in Self.sizes {
                let x = [Float].random(rows * cols, seed: UInt64(rows + cols)), bias = [Float].random(cols, seed: 5)
                var y = x, expected = x
                addBias(&y, bias, rows: rows, cols: cols)
                addBiasNaive(&expected, bias, rows: rows, cols: cols)
                XCTAssertEqual(y, expected, "addBias \(rows)×\(cols)")
                let other = [Float].random(rows * cols, seed: 77)
                addResidual(&y, other, count: y.count)
                addResidualNaive(&expected, other, count: expected.count)
                XCTAssertEqual(y, expected, "addResidual \(rows)×\(cols)")
            }
        }
    }

    func testL2NormalizeRowsMatchesNaiveTwin() {
        for rows in [1, 3, 17] {
            for cols in Self.sizes {
                var x = [Float].random(rows * cols, seed: UInt64(rows * 31 + cols))
                if rows > 1 { for c in 0..<cols { x[cols + c] = 0 } } // a zero row stays zero
                var y = x, expected = x
                l2NormalizeRows(&y, rows: rows, cols: cols)
                l2NormalizeRowsNaive(&expected, rows: rows, cols: cols)
                assertNMSE(y, expected, limit: 1e-12, "l2NormalizeRows \(rows)×\(cols)")
                if rows > 1 { XCTAssertEqual(Array(y[cols..<2 * cols]), [Float](repeating: 0, count: cols)) }
            }
        }
    }

    /// Attention over a token tree continuing a prefix, by the kernel and by its
    /// naive twin (which writes each node's path out as a sequence); also each
    /// node against the general kernel on its whole `prefix + path` sequence,
    /// and a subset of query nodes; heads one after another (one thread) and in
    /// parallel.
    func testTreeCausalAttentionMatchesNaiveTwin() {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        for threads in [1, 2] {
            Threading.setThreadCount(threads)
            checkTreeCausalAttention()
        }
    }

    func checkTreeCausalAttention() {
        // parents: a chain, a fan-out, and a tree with shared and diverging paths.
        let trees: [[Int]] = [[-1], [-1, 0, 1, 2], [-1, -1, -1, 0, 0, 1], [-1, 0, 0, 1, 1, 3, 2, 6, 6, -1, 9]]
        for (t, parents) in trees.enumerated() {
            for (p, heads, dim) in [(0, 1, 4), (1, 2, 8), (7, 3, 16), (20, 2, 32)] {
                let n = parents.count, width = heads * dim
                var depths = [Int32](repeating: 0, count: n)
                for i in 0..<n where parents[i] >= 0 { depths[i] = depths[parents[i]] + 1 }
                let maxDepth = Int(depths.max()!)
                let q = [Float].random(n * width, seed: UInt64(t * 10 + p)), k = [Float].random(n * width, seed: 81)
                let v = [Float].random(n * width, seed: 82)
                let kP = [Float].random(max(p, 1) * width, seed: 83), vP = [Float].random(max(p, 1) * width, seed: 84)
                let scale = 1 / Float(dim).squareRoot()
                let parents32 = parents.map(Int32.init)
                var out = [Float](repeating: .nan, count: n * width), expected = out
                var scratch = [Float](repeating: 0, count: max(n, 2) * (p + maxDepth + 1))
                treeCausalAttention(&out, ldo: width, q: q, ldq: width, queryNodes: nil, queryCount: n,
                                    kNodes: k, ldk: width, vNodes: v, ldv: width, kPrefix: kP, vPrefix: vP, prefixLength: p,
                                    parents: parents32, depths: depths, maxDepth: maxDepth, heads: heads, headDim: dim,
                                    scale: scale, scratch: &scratch)
                treeCausalAttentionNaive(&expected, q: q, kNodes: k, vNodes: v, nodeCount: n, kPrefix: kP, vPrefix: vP,
                                         prefixLength: p, parents: parents, heads: heads, headDim: dim, scale: scale)
                assertNMSE(out, expected, "tree attention \(parents) P=\(p)")
                // A subset of query rows (the last layer's pooled nodes).
                let subset: [Int32] = [Int32(n - 1), 0]
                var some = [Float](repeating: .nan, count: 2 * width)
                treeCausalAttention(&some, ldo: width, q: [Float](q[((n - 1) * width)...]) + [Float](q[0..<width]), ldq: width,
                                    queryNodes: subset, queryCount: 2, kNodes: k, ldk: width, vNodes: v, ldv: width,
                                    kPrefix: kP, vPrefix: vP, prefixLength: p, parents: parents32, depths: depths,
                                    maxDepth: maxDepth, heads: heads, headDim: dim, scale: scale, scratch: &scratch)
                assertNMSE(some, [Float](out[((n - 1) * width)...]) + [Float](out[0..<width]), "query subset \(parents)")
                // The deepest node against the general kernel on its whole sequence.
                var path: [Int] = [], m = n - 1
                while m >= 0 { path.insert(m, at: 0); m = parents[m] }
                let keys = [Float](kP[0..<(p * width)]) + path.flatMap { k[($0 * width)..<(($0 + 1) * width)] }
                let values = [Float](vP[0..<(p * width)]) + path.flatMap { v[($0 * width)..<(($0 + 1) * width)] }
                var whole = [Float](repeating: .nan, count: width)
                var wholeScratch = [Float](repeating: 0, count: p + path.count)
                multiHeadAttention(&whole, ldo: width, q: [Float](q[((n - 1) * width)...]), ldq: width, k: keys, ldk: width,
                                   v: values, ldv: width, queryCount: 1, keyCount: p + path.count, heads: heads, headDim: dim,
                                   scale: scale, mask: .none, scratch: &wholeScratch)
                assertNMSE([Float](out[((n - 1) * width)...]), whole, "tree attention vs whole sequence \(parents) P=\(p)")
            }
        }
    }

    /// Scratch is reused at each nesting level, nested levels never overlap, and
    /// every thread has its own.
    func testWorkspaceReusesScratchPerLevelAndThread() {
        let (outer, inner) = Workspace.withScratch(1000) { a in
            a[999] = 1
            let b = Workspace.withScratch(10) { b in
                XCTAssertTrue(b + 10 <= a || a + 1000 <= b, "nested scratch overlaps its caller's")
                return b
            }
            return (a, b)
        }
        XCTAssertEqual(Workspace.withScratch(500) { $0 }, outer, "the first level's buffer is reused")
        XCTAssertEqual(Workspace.withScratch(1000) { _ in Workspace.withScratch(5) { $0 } }, inner, "the second level's too")
        XCTAssertGreaterThanOrEqual(Workspace.retainedFloats, 1010)
        // Four threads each hold their scratch until all four have theirs.
        let addresses = Mutex<Set<UInt>>([])
        let finished = DispatchGroup()
        for _ in 0..<4 {
            finished.enter()
            Thread.detachNewThread {
                Workspace.withScratch(64) { pointer in
                    pointer.update(repeating: 0, count: 64)
                    addresses.withLock { _ = $0.insert(UInt(bitPattern: pointer)) }
                    let deadline = Date() + 10
                    while addresses.withLock({ $0.count }) < 4 && Date() < deadline { usleep(1000) }
                }
                finished.leave()
            }
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(addresses.withLock { $0.count }, 4, "threads share no scratch")
    }

    func testAttentionMatchesNaiveTwin() {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        for threads in [1, 2] { // heads one after another, and in parallel
            Threading.setThreadCount(threads)
            checkAttention()
        }
    }

    func checkAttention() {
        let cases: [(tq: Int, tk: Int, heads: Int, dim: Int)] = [
            (1, 1, 1, 1), (3, 17, 2, 8), (17, 17, 4, 16), (77, 77, 3, 17), (1, 257, 2, 32), (257, 257, 2, 8), (17, 577, 1, 64),
        ]
        for c in cases {
            let width = c.heads * c.dim
            let q = [Float].random(c.tq * width, seed: UInt64(c.tq * 3 + c.tk))
            let k = [Float].random(c.tk * width, seed: UInt64(c.tk * 5 + 1)), v = [Float].random(c.tk * width, seed: UInt64(c.tk * 11 + 2))
            var masks: [SoftmaxMask] = [.none, SoftmaxMask(validColumns: max(1, c.tk / 2))]
            if c.tq <= c.tk { masks.append(SoftmaxMask(causalOffset: c.tk - c.tq)) }
            for mask in masks {
                var out = [Float](repeating: .nan, count: c.tq * width), expected = out
                var scratch = [Float](repeating: 0, count: c.tq * c.tk)
                let scale = 1 / Float(c.dim).squareRoot()
                multiHeadAttention(&out, ldo: width, q: q, ldq: width, k: k, ldk: width, v: v, ldv: width,
                                   queryCount: c.tq, keyCount: c.tk, heads: c.heads, headDim: c.dim,
                                   scale: scale, mask: mask, scratch: &scratch)
                multiHeadAttentionNaive(&expected, q: q, k: k, v: v, queryCount: c.tq, keyCount: c.tk,
                                        heads: c.heads, headDim: c.dim, scale: scale, mask: mask)
                assertNMSE(out, expected, "attention \(c) \(mask)")
            }
        }
    }

    /// One query (a decoder step) reads the keys and values row by row for all
    /// heads, and gives the same bits as attending head by head: keys in and past
    /// the skinny kernel's 12-key tiles, head widths with and without 4-lane tails,
    /// strided rows, every mask, one and two threads.
    func testSingleQueryAttentionEqualsHeadByHead() {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        let cases: [(tk: Int, heads: Int, dim: Int)] = [(1, 1, 1), (11, 3, 6), (12, 2, 20), (29, 4, 17), (577, 12, 64)]
        for threads in [1, 2] {
            Threading.setThreadCount(threads)
            for c in cases {
                let width = c.heads * c.dim, ld = width + 3
                let q = [Float].random(width, seed: UInt64(c.tk)), k = [Float].random(c.tk * ld, seed: UInt64(c.tk + 1))
                let v = [Float].random(c.tk * ld, seed: UInt64(c.tk + 2))
                let scale = 1 / Float(c.dim).squareRoot()
                for mask in [SoftmaxMask.none, SoftmaxMask(causalOffset: c.tk - 1), SoftmaxMask(validColumns: (c.tk + 1) / 2)] {
                    var out = [Float](repeating: .nan, count: width), expected = out
                    var scratch = [Float](repeating: 0, count: c.tk)
                    multiHeadAttention(&out, ldo: width, q: q, ldq: width, k: k, ldk: ld, v: v, ldv: ld, queryCount: 1,
                                       keyCount: c.tk, heads: c.heads, headDim: c.dim, scale: scale, mask: mask, scratch: &scratch)
                    q.withUnsafeBufferPointer { q in
                        k.withUnsafeBufferPointer { k in
                            v.withUnsafeBufferPointer { v in
                                expected.withUnsafeMutableBufferPointer { e in
                                    scratch.withUnsafeMutableBufferPointer { s in
                                        for h in 0..<c.heads {
                                            let column = h * c.dim
                                            attentionHead(e.baseAddress! + column, ldo: width, q: q.baseAddress! + column, ldq: width,
                                                          k: k.baseAddress! + column, ldk: ld, v: v.baseAddress! + column, ldv: ld,
                                                          queryCount: 1, keyCount: c.tk, headDim: c.dim, scale: scale, mask: mask,
                                                          scratch: s.baseAddress!)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    XCTAssertEqual(out.map(\.bitPattern), expected.map(\.bitPattern), "\(c) \(mask), \(threads) threads")
                }
            }
        }
    }

    /// Decoding with a KV cache (queries at positions offset.., attending the
    /// cached keys plus their own) gives the same rows as the full causal pass,
    /// and the strided layout of a fused `[T, 3·C]` QKV buffer works in place.
    func testAttentionWithKVCacheAndFusedLayout() {
        let (tokens, heads, dim) = (19, 3, 8)
        let width = heads * dim
        let qkv = [Float].random(tokens * 3 * width, seed: 42)
        let scale = 1 / Float(dim).squareRoot()
        var full = [Float](repeating: 0, count: tokens * width)
        var scratch = [Float](repeating: 0, count: tokens * tokens)
        qkv.withUnsafeBufferPointer { p in
            let base = p.baseAddress!
            multiHeadAttention(&full, ldo: width, q: base, ldq: 3 * width, k: base + width, ldk: 3 * width,
                               v: base + 2 * width, ldv: 3 * width, queryCount: tokens, keyCount: tokens,
                               heads: heads, headDim: dim, scale: scale, mask: SoftmaxMask(causalOffset: 0), scratch: &scratch)
            for step in [1, 7, 18] {
                // Queries step..<tokens, keys 0..<tokens (cache of `step` + new ones).
                let newRows = tokens - step
                var out = [Float](repeating: 0, count: newRows * width)
                multiHeadAttention(&out, ldo: width, q: base + step * 3 * width, ldq: 3 * width,
                                   k: base + width, ldk: 3 * width, v: base + 2 * width, ldv: 3 * width,
                                   queryCount: newRows, keyCount: tokens, heads: heads, headDim: dim,
                                   scale: scale, mask: SoftmaxMask(causalOffset: step), scratch: &scratch)
                assertNMSE(out, Array(full[(step * width)...]), limit: 1e-12, "KV-cache step at \(step)")
            }
        }
    }

    func testPatchEmbeddingMatchesNaiveTwin() {
        let cases: [(c: Int, h: Int, w: Int, p: Int, o: Int, b: Int)] = [
            (3, 4, 4, 1, 3, 1), (3, 17, 17, 4, 17, 2), (3, 32, 48, 16, 77, 1), (1, 9, 7, 3, 5, 3), (3, 64, 64, 32, 257, 1),
        ]
        for c in cases {
            let images = [Float].random(c.b * c.c * c.h * c.w, seed: UInt64(c.h * c.w))
            let weight = [Float].random(c.o * c.c * c.p * c.p, seed: UInt64(c.o)), bias = [Float].random(c.o, seed: 3)
            let n = (c.h / c.p) * (c.w / c.p)
            for withBias in [true, false] {
                var y = [Float](repeating: .nan, count: c.b * n * c.o), expected = y
                var scratch = [Float](repeating: 0, count: n * c.c * c.p * c.p)
                bias.withUnsafeBufferPointer { b in
                    patchEmbedding(&y, images, weight: weight, bias: withBias ? b.baseAddress : nil, batch: c.b,
                                   channels: c.c, height: c.h, width: c.w, patch: c.p, outChannels: c.o, scratch: &scratch)
                    patchEmbeddingNaive(&expected, images, weight: weight, bias: withBias ? b.baseAddress : nil, batch: c.b,
                                        channels: c.c, height: c.h, width: c.w, patch: c.p, outChannels: c.o)
                }
                assertNMSE(y, expected, "patch embedding \(c) bias=\(withBias)")
            }
        }
    }

    func testThreadCountSettingIsUsedAndRestorable() {
        let original = Threading.threadCount
        defer { Threading.setThreadCount(original) }
        Threading.setThreadCount(1)
        XCTAssertEqual(Threading.threadCount, 1)
        let x = [Float].random(100_003, seed: 1)
        var single = x
        activate(&single, count: x.count, .gelu)
        Threading.setThreadCount(4)
        XCTAssertEqual(Threading.threadCount, 4)
        var multi = x
        activate(&multi, count: x.count, .gelu)
        XCTAssertEqual(single, multi, "the result does not depend on the thread count")
        Threading.setThreadCount(0)
        XCTAssertEqual(Threading.threadCount, 1, "clamped to at least one thread")
    }
}
