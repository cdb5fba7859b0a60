// Matrix products with few rows (M ≤ 8: a decoder step, a few beams): each weight
// is read once and used for every row while it is in registers. OpenBLAS packs the
// whole weight matrix for such products first (M = 1 at 1024×4096 runs at ~3
// GFLOP/s), so these are written here instead. Plain Swift SIMD: the package is
// built for the baseline x86-64 (SSE2) and generic ARM64 targets, so the loops use
// 4-wide vectors and separate multiply and add, and stay correct on every CPU.

/// The most rows ``skinnyGEMM(_:ldy:_:ldx:weight:ldw:m:n:k:alpha:beta:)`` and
/// ``skinnyGEMMNN(_:ldy:_:ldx:b:ldb:m:n:k:alpha:beta:)`` take; ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``
/// sends products with at most this many rows to them.
public let skinnyMaxRows = 8

/// `y[M, N] = alpha · x[M, K] · Wᵀ + beta · y` for `W` stored `[N, K]` (PyTorch's
/// `nn.Linear` layout) and `M ≤ ` ``skinnyMaxRows``: dot products of each weight
/// row with every input row, the weights streamed once. With several threads the
/// `N` output columns are split between them when the weights are large.
///
/// - Parameters:
///   - y: `[M, N]`, row stride `ldy`; not read when `beta` is 0.
///   - ldy: the row stride of `y`.
///   - x: `[M, K]`, row stride `ldx`.
///   - ldx: the row stride of `x`.
///   - weight: `[N, K]`, row stride `ldw`.
///   - ldw: the row stride of `weight`.
///   - m: `M`, at most ``skinnyMaxRows``.
///   - n: `N`.
///   - k: `K`.
///   - alpha: the factor of the product.
///   - beta: the factor of `y`'s previous values.
public func skinnyGEMM(
    _ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
    weight: UnsafePointer<Float>, ldw: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
) {
    precondition(m <= skinnyMaxRows, "skinnyGEMM takes at most \(skinnyMaxRows) rows, not \(m)")
    guard m > 0, n > 0 else { return }
    let operands = SkinnyOperands(y: y, ldy: ldy, x: x, ldx: ldx, w: weight, ldw: ldw, k: k, alpha: alpha, beta: beta)
    // Blocks of whole tiles; one block per thread for large weights.
    let tiles = (n + SkinnyOperands.tile - 1) / SkinnyOperands.tile
    let blocks = n * k >= skinnyParallelWeights ? min(Threading.threadCount, tiles) : 1
    if blocks <= 1 {
        operands.run(rows: m, columns: 0..<n)
        return
    }
    Threading.parallelFor(blocks) { block in
        let start = tiles * block / blocks * SkinnyOperands.tile
        let end = min(n, tiles * (block + 1) / blocks * SkinnyOperands.tile)
        operands.run(rows: m, columns: start..<end)
    }
}

/// Weights (`N·K` floats) from which ``skinnyGEMM(_:ldy:_:ldx:weight:ldw:m:n:k:alpha:beta:)``
/// splits its columns between threads (below, one thread is faster than waking another).
let skinnyParallelWeights = 1 << 18

/// Naive twin of ``skinnyGEMM(_:ldy:_:ldx:weight:ldw:m:n:k:alpha:beta:)``: the triple
/// loop in `Double`.
public func skinnyGEMMNaive(
    _ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
    weight: UnsafePointer<Float>, ldw: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
) {
    for r in 0..<m {
        for o in 0..<n {
            var sum = 0.0
            for i in 0..<k { sum += Double(x[r * ldx + i]) * Double(weight[o * ldw + i]) }
            let previous = beta == 0 ? 0 : Double(beta) * Double(y[r * ldy + o])
            y[r * ldy + o] = Float(Double(alpha) * sum + previous)
        }
    }
}

/// `y[M, N] = alpha · x[M, K] · B + beta · y` for `B` stored `[K, N]` and
/// `M ≤ ` ``skinnyMaxRows`` (an attention step's `scores · V`): rows of `B`
/// scaled by each input value and accumulated, 16 columns at a time.
///
/// - Parameters:
///   - y: `[M, N]`, row stride `ldy`; not read when `beta` is 0.
///   - ldy: the row stride of `y`.
///   - x: `[M, K]`, row stride `ldx`.
///   - ldx: the row stride of `x`.
///   - b: `[K, N]`, row stride `ldb`.
///   - ldb: the row stride of `b`.
///   - m: `M`, at most ``skinnyMaxRows``.
///   - n: `N`.
///   - k: `K`.
///   - alpha: the factor of the product.
///   - beta: the factor of `y`'s previous values.
public func skinnyGEMMNN(
    _ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
    b: UnsafePointer<Float>, ldb: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
) {
    precondition(m <= skinnyMaxRows, "skinnyGEMMNN takes at most \(skinnyMaxRows) rows, not \(m)")
    for r in 0..<m {
        let input = x + r * ldx, output = y + r * ldy
        var column = 0
        while column &+ 16 <= n {
            var a0 = SIMD4<Float>(), a1 = a0, a2 = a0, a3 = a0
            var row = b + column
            for i in 0..<k {
                let s = SIMD4<Float>(repeating: input[i])
                a0 += s * load4(row)
                a1 += s * load4(row + 4)
                a2 += s * load4(row + 8)
                a3 += s * load4(row + 12)
                row += ldb
            }
            store(a0, alpha: alpha, beta: beta, to: output + column)
            store(a1, alpha: alpha, beta: beta, to: output + column + 4)
            store(a2, alpha: alpha, beta: beta, to: output + column + 8)
            store(a3, alpha: alpha, beta: beta, to: output + column + 12)
            column &+= 16
        }
        while column < n {
            var sum: Float = 0
            for i in 0..<k { sum += input[i] * b[i * ldb + column] }
            output[column] = beta == 0 ? alpha * sum : alpha * sum + beta * output[column]
            column &+= 1
        }
    }
}

/// Naive twin of ``skinnyGEMMNN(_:ldy:_:ldx:b:ldb:m:n:k:alpha:beta:)``: the triple
/// loop in `Double`.
public func skinnyGEMMNNNaive(
    _ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
    b: UnsafePointer<Float>, ldb: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
) {
    for r in 0..<m {
        for o in 0..<n {
            var sum = 0.0
            for i in 0..<k { sum += Double(x[r * ldx + i]) * Double(b[i * ldb + o]) }
            let previous = beta == 0 ? 0 : Double(beta) * Double(y[r * ldy + o])
            y[r * ldy + o] = Float(Double(alpha) * sum + previous)
        }
    }
}

/// The sum ``skinnyGEMM(_:ldy:_:ldx:weight:ldw:m:n:k:alpha:beta:)`` forms for
/// output column `column` of `columns` (before `alpha` and `beta`): in a whole
/// tile, one 4-lane partial sum of `x·w`, then its lanes and the `k % 4` tail,
/// as every tile sums; past the last whole tile, ``dot(_:_:count:)``. For a kernel
/// that computes single outputs and must give the same bits (one query's
/// attention scores).
@inline(__always)
func skinnyDot(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, k: Int, column: Int, columns: Int) -> Float {
    guard column < columns / SkinnyOperands.tile * SkinnyOperands.tile else { return dot(x, w, count: k) }
    var partial = SIMD4<Float>()
    var i = 0
    let end = k & ~3
    while i < end {
        partial += load4(x + i) * load4(w + i)
        i &+= 4
    }
    var tail: Float = 0
    while i < k {
        tail += x[i] * w[i]
        i &+= 1
    }
    return partial.sum() + tail
}

@inline(__always)
private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always)
private func store(_ v: SIMD4<Float>, alpha: Float, beta: Float, to p: UnsafeMutablePointer<Float>) {
    var result = v * alpha
    if beta != 0 { result += beta * UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) }
    UnsafeMutableRawPointer(p).storeBytes(of: result, as: SIMD4<Float>.self)
}

/// The operands of one skinny product and its register tiles: 6 weight rows × 1
/// input row, 4 × 2, or 3 × 3 (each fits SSE's 16 vector registers without
/// spilling); more input rows run as groups of 3 and 2 over the same weight
/// block, which is then still in cache. Every tile sums an output the same way
/// (one 4-lane partial sum, then its lanes and the `k % 4` tail), so a row's
/// result does not depend on the tile, nor on the number of rows.
private struct SkinnyOperands: @unchecked Sendable {
    let y: UnsafeMutablePointer<Float>, ldy: Int
    let x: UnsafePointer<Float>, ldx: Int
    let w: UnsafePointer<Float>, ldw: Int
    let k: Int, alpha: Float, beta: Float

    /// Weight rows per block: a multiple of every tile's rows (6, 4, 3).
    static let tile = 12

    func run(rows: Int, columns: Range<Int>) {
        var o = columns.lowerBound
        if rows == 1 {
            // One input row is bound by reading the weights: six weight rows a sixth of
            // the tiled columns apart are six long sequential streams, which the
            // hardware prefetchers follow (six neighbouring rows at a time read BLIP's
            // decoder weights from memory at about half the speed on Zen 4).
            let sixth = (columns.count / Self.tile) * Self.tile / 6
            for c in o..<(o &+ sixth) { tile6x1(column: c, stride: sixth) }
            o &+= 6 &* sixth
        } else {
            while o &+ Self.tile <= columns.upperBound {
                // Groups of 3 input rows, with 2 + 2 instead of 3 + 1 (8 rows: 3, 3, 2;
                // so no group of one row).
                var first = 0
                while first < rows {
                    let remaining = rows &- first
                    if remaining == 2 || remaining == 4 {
                        for t in stride(from: 0, to: Self.tile, by: 4) { tile4x2(row: first, column: o &+ t) }
                        first &+= 2
                    } else {
                        for t in stride(from: 0, to: Self.tile, by: 3) { tile3x3(row: first, column: o &+ t) }
                        first &+= 3
                    }
                }
                o &+= Self.tile
            }
        }
        while o < columns.upperBound {
            for r in 0..<rows { finish(row: r, column: o, sum: dot(x + r * ldx, w + o * ldw, count: k)) }
            o &+= 1
        }
    }

    @inline(__always)
    func finish(row: Int, column: Int, sum: Float) {
        let p = y + row * ldy + column
        p.pointee = beta == 0 ? alpha * sum : alpha * sum + beta * p.pointee
    }

    /// The `k % 4` trailing products of one input row and one weight row.
    @inline(__always)
    func tail(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, from start: Int) -> Float {
        var sum: Float = 0
        var i = start
        while i < k {
            sum += a[i] * b[i]
            i &+= 1
        }
        return sum
    }

    /// Input row 0 against the six weight rows `column + j·stride`, `j` in `0..<6`.
    func tile6x1(column: Int, stride: Int) {
        let u = x, step = stride * ldw
        let w0 = w + column * ldw, w1 = w0 + step, w2 = w1 + step, w3 = w2 + step, w4 = w3 + step, w5 = w4 + step
        var a0 = SIMD4<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0
        var i = 0
        let end = k & ~3
        while i < end {
            let v = load4(u + i)
            a0 += v * load4(w0 + i)
            a1 += v * load4(w1 + i)
            a2 += v * load4(w2 + i)
            a3 += v * load4(w3 + i)
            a4 += v * load4(w4 + i)
            a5 += v * load4(w5 + i)
            i &+= 4
        }
        finish(row: 0, column: column, sum: a0.sum() + tail(u, w0, from: end))
        finish(row: 0, column: column + stride, sum: a1.sum() + tail(u, w1, from: end))
        finish(row: 0, column: column + 2 * stride, sum: a2.sum() + tail(u, w2, from: end))
        finish(row: 0, column: column + 3 * stride, sum: a3.sum() + tail(u, w3, from: end))
        finish(row: 0, column: column + 4 * stride, sum: a4.sum() + tail(u, w4, from: end))
        finish(row: 0, column: column + 5 * stride, sum: a5.sum() + tail(u, w5, from: end))
    }

    /// Input rows `row`, `row+1` against weight rows `column..<column+4`.
    func tile4x2(row: Int, column: Int) {
        let u0 = x + row * ldx, u1 = u0 + ldx
        let w0 = w + column * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw
        var a00 = SIMD4<Float>(), a01 = a00, a02 = a00, a03 = a00
        var a10 = a00, a11 = a00, a12 = a00, a13 = a00
        var i = 0
        let end = k & ~3
        while i < end {
            let v0 = load4(w0 + i), v1 = load4(w1 + i), v2 = load4(w2 + i), v3 = load4(w3 + i)
            let p = load4(u0 + i)
            a00 += p * v0
            a01 += p * v1
            a02 += p * v2
            a03 += p * v3
            let q = load4(u1 + i)
            a10 += q * v0
            a11 += q * v1
            a12 += q * v2
            a13 += q * v3
            i &+= 4
        }
        finish(row: row, column: column, sum: a00.sum() + tail(u0, w0, from: end))
        finish(row: row, column: column + 1, sum: a01.sum() + tail(u0, w1, from: end))
        finish(row: row, column: column + 2, sum: a02.sum() + tail(u0, w2, from: end))
        finish(row: row, column: column + 3, sum: a03.sum() + tail(u0, w3, from: end))
        finish(row: row + 1, column: column, sum: a10.sum() + tail(u1, w0, from: end))
        finish(row: row + 1, column: column + 1, sum: a11.sum() + tail(u1, w1, from: end))
        finish(row: row + 1, column: column + 2, sum: a12.sum() + tail(u1, w2, from: end))
        finish(row: row + 1, column: column + 3, sum: a13.sum() + tail(u1, w3, from: end))
    }

    /// Input rows `row..<row+3` against weight rows `column..<column+3`.
    func tile3x3(row: Int, column: Int) {
        let u0 = x + row * ldx, u1 = u0 + ldx, u2 = u1 + ldx
        let w0 = w + column * ldw, w1 = w0 + ldw, w2 = w1 + ldw
        var a00 = SIMD4<Float>(), a01 = a00, a02 = a00
        var a10 = a00, a11 = a00, a12 = a00
        var a20 = a00, a21 = a00, a22 = a00
        var i = 0
        let end = k & ~3
        while i < end {
            let v0 = load4(w0 + i), v1 = load4(w1 + i), v2 = load4(w2 + i)
            let p = load4(u0 + i)
            a00 += p * v0
            a01 += p * v1
            a02 += p * v2
            let q = load4(u1 + i)
            a10 += q * v0
            a11 += q * v1
            a12 += q * v2
            let r = load4(u2 + i)
            a20 += r * v0
            a21 += r * v1
            a22 += r * v2
            i &+= 4
        }
        finish(row: row, column: column, sum: a00.sum() + tail(u0, w0, from: end))
        finish(row: row, column: column + 1, sum: a01.sum() + tail(u0, w1, from: end))
        finish(row: row, column: column + 2, sum: a02.sum() + tail(u0, w2, from: end))
        finish(row: row + 1, column: column, sum: a10.sum() + tail(u1, w0, from: end))
        finish(row: row + 1, column: column + 1, sum: a11.sum() + tail(u1, w1, from: end))
        finish(row: row + 1, column: column + 2, sum: a12.sum() + tail(u1, w2, from: end))
        finish(row: row + 2, column: column, sum: a20.sum() + tail(u2, w0, from: end))
        finish(row: row + 2, column: column + 1, sum: a21.sum() + tail(u2, w1, from: end))
        finish(row: row + 2, column: column + 2, sum: a22.sum() + tail(u2, w2, from: end))
    }
}
