/// Row-major single-precision matrix multiply through the platform's BLAS
/// (``BLAS``: OpenBLAS on Linux, Accelerate on Apple platforms):
/// `C[M, N] = alpha · op(A) · op(B) + beta · C`, where `op(A)` is `[M, K]`
/// (stored `[K, M]` when `transposeA`) and `op(B)` is `[K, N]` (stored `[N, K]`
/// when `transposeB`). Leading dimensions are the row strides in elements, so
/// sub-matrices such as one attention head inside `[T, H·D]` need no copy.
///
/// Products of at most ``skinnyMaxRows`` rows with an untransposed `A` (decoder
/// steps, beams, pooled rows) run in ``skinnyGEMM(_:ldy:_:ldx:weight:ldw:m:n:k:alpha:beta:)``
/// or ``skinnyGEMMNN(_:ldy:_:ldx:b:ldb:m:n:k:alpha:beta:)``, whose sums for a row
/// are the same whatever the number of rows (so a batch of up to 8 rows equals
/// its rows one at a time, bit for bit); the rest in the BLAS
/// (``sgemmBLAS(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``),
/// split between ``Threading``'s threads when large: along the longer side of
/// `C`, each part one single-threaded BLAS call (inside a ``Threading/parallelFor(_:_:)``
/// body the product runs whole on the calling thread).
///
/// With `rowExact` (batched towers), a row's result must not depend on how many
/// rows the product has: where the BLAS kernel's sums depend on that
/// (``BLAS/rowAlignment`` above 1) the product is split along its columns only,
/// on a decision from `n` and `k` alone, so rows at the same place modulo the
/// alignment of products whose row counts are multiples of it come out alike.
/// Elsewhere `rowExact` changes nothing.
public func sgemm(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    rowExact: Bool = false
) {
    guard m > 0, n > 0 else { return }
    if m <= skinnyMaxRows && !transposeA {
        if transposeB {
            skinnyGEMM(c, ldy: ldc, a, ldx: lda, weight: b, ldw: ldb, m: m, n: n, k: k, alpha: alpha, beta: beta)
        } else {
            skinnyGEMMNN(c, ldy: ldc, a, ldx: lda, b: b, ldb: ldb, m: m, n: n, k: k, alpha: alpha, beta: beta)
        }
        return
    }
    let threads = Threading.threadCount
    let canSplit = threads > 1 && BLAS.runsSingleThreaded && !Threading.isInParallelLoop
    let alignment = rowExact ? BLAS.rowAlignment : 1
    if alignment > 1 {
        // Whether to split is decided as for `alignment` rows, so that it does not depend on `m` either.
        let split = canSplit && 2 * Double(alignment) * Double(n) * Double(k) >= parallelGEMMFlops
        sgemmInColumnParts(threads: split ? threads : 1, transposeA: transposeA, transposeB: transposeB,
                           m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    guard canSplit, 2 * Double(m) * Double(n) * Double(k) >= parallelGEMMFlops else {
        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    // One part per thread, along the longer side of C, in multiples of 16; each part
    // above OpenBLAS's small-matrix bound (M·N·K ≤ 10⁶), so a part runs the same
    // blocked kernel, with the same sums per element, as the whole product would.
    let alongColumns = n >= m
    let length = alongColumns ? n : m
    let parts = min(threads, length / 16, Int(Double(m) * Double(n) * Double(k) / 1.1e6))
    guard parts > 1 else {
        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let chunk = (length + parts - 1) / parts
    let step = (chunk + 15) / 16 * 16
    Threading.parallelFor((length + step - 1) / step) { part in
        let start = part * step, count = min(step, length - start)
        if alongColumns {
            BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: count, k: k, alpha: alpha,
                       a: a, lda: lda, b: transposeB ? b + start * ldb : b + start, ldb: ldb,
                       beta: beta, c: c + start, ldc: ldc)
        } else {
            BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: count, n: n, k: k, alpha: alpha,
                       a: transposeA ? a + start : a + start * lda, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c + start * ldc, ldc: ldc)
        }
    }
}

/// The BLAS path of ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``
/// with `rowExact`, for kernels whose sums for a row depend on the product's shape
/// (``BLAS/rowAlignment`` > 1): split between `threads` threads along the
/// columns only, at places that depend on `n` and the thread count alone (these
/// kernels sum a row differently in parts of other widths, and differently again
/// at other places among the rows); the caller decides whether to split from
/// `N` and `K` alone. So two products with the same `N`, `K` and thread count
/// compute a row alike whenever their row counts are multiples of the alignment
/// and the row's places in them have the same remainder.
func sgemmInColumnParts(
    threads: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let parts = min(threads, n / 16)
    guard parts > 1 else {
        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    func start(_ part: Int) -> Int { part == parts ? n : part * n / parts / 16 * 16 }
    Threading.parallelFor(parts) { part in
        let column = start(part)
        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: start(part + 1) - column, k: k, alpha: alpha,
                   a: a, lda: lda, b: transposeB ? b + column * ldb : b + column, ldb: ldb,
                   beta: beta, c: c + column, ldc: ldc)
    }
}

/// Products of at least this many FLOPs are split between ``Threading``'s threads
/// (smaller ones cost less than waking a thread).
let parallelGEMMFlops = 4_000_000.0

/// ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)`` always
/// through the BLAS, whatever the shape (for benchmarks and tests that compare
/// the two).
public func sgemmBLAS(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
               a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// `y[rows] = alpha · A · x + beta · y` for a row-major `A` `[rows, cols]` (row
/// stride `lda`) through the BLAS's GEMV (for benchmarks that compare it with
/// ``skinnyGEMM(_:ldy:_:ldx:weight:ldw:m:n:k:alpha:beta:)`` at one row).
public func sgemvBLAS(rows: Int, cols: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                      x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
    guard rows > 0 else { return }
    BLAS.sgemv(rows: rows, cols: cols, alpha: alpha, a: a, lda: lda, x: x, beta: beta, y: y)
}

/// Naive twin of ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``:
/// the triple loop, accumulated in `Double`.
public func sgemmNaive(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(x) * Double(y)
            }
            let previous = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
            c[i * ldc + j] = Float(Double(alpha) * sum + previous)
        }
    }
}

/// A fully connected layer's product, `y[R, O] = x[R, I] · Wᵀ + b`, with `W`
/// stored `[O, I]` as PyTorch stores `nn.Linear` weights. All leading dimensions
/// of `x` are flattened into the `R` rows of one GEMM; the bias is written into
/// `y` first and accumulated by the GEMM (`beta = 1`), so it costs no extra pass.
///
/// - Parameters:
///   - y: `[rows, outFeatures]`, row stride `ldy` (default `outFeatures`).
///   - x: `[rows, inFeatures]`, row stride `ldx` (default `inFeatures`).
///   - weight: `[outFeatures, inFeatures]`.
///   - bias: `[outFeatures]` or nil.
///   - rows: `R`, the rows of `x` and `y`.
///   - inFeatures: `I`, the width of `x`.
///   - outFeatures: `O`, the width of `y`.
///   - ldx: the row stride of `x` (default `inFeatures`).
///   - ldy: the row stride of `y` (default `outFeatures`).
///   - rowExact: see ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``.
public func linearForward(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows: Int, inFeatures: Int, outFeatures: Int,
    ldx: Int? = nil, ldy: Int? = nil, rowExact: Bool = false
) {
    let ldy = ldy ?? outFeatures
    if let bias {
        for r in 0..<rows { (y + r * ldy).update(from: bias, count: outFeatures) }
    }
    sgemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures,
          a: x, lda: ldx ?? inFeatures, b: weight, ldb: inFeatures,
          beta: bias == nil ? 0 : 1, c: y, ldc: ldy, rowExact: rowExact)
}

/// Naive twin of ``linearForward(_:_:weight:bias:rows:inFeatures:outFeatures:ldx:ldy:rowExact:)``
/// (contiguous rows).
public func linearForwardNaive(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows: Int, inFeatures: Int, outFeatures: Int
) {
    for r in 0..<rows {
        for o in 0..<outFeatures {
            var sum = Double(bias?[o] ?? 0)
            for i in 0..<inFeatures { sum += Double(x[r * inFeatures + i]) * Double(weight[o * inFeatures + i]) }
            y[r * outFeatures + o] = Float(sum)
        }
    }
}
