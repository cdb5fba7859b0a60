/// The dot product of every row of `matrix` `[N, D]` with `vector` `[D]`: how
/// similar each of many embeddings is to one (labels to an image).
///
/// Rows go through the BLAS's GEMV in blocks of 128 rows, the blocks spread
/// over ``Threading``'s threads. F32 rows are read in place; F16/BF16 rows
/// (label tables are stored in F16) are widened a block at a time into
/// workspace scratch that stays in cache, so a large half-precision table never
/// exists in F32 as a whole. Blocks start at fixed rows, so every result is the
/// same at any thread count.
/// - Parameters:
///   - y: `[N]`.
///   - matrix: `[N, D]`, any float storage.
///   - vector: `[D]`.
public func rowDotProducts(_ y: UnsafeMutablePointer<Float>, _ matrix: Tensor, _ vector: UnsafePointer<Float>) {
    precondition(matrix.shape.count == 2 && matrix.dtype.isFloatStorage, "rowDotProducts takes a [N, D] float matrix, not \(matrix.shape) \(matrix.dtype)")
    let (rows, d) = (matrix.shape[0], matrix.shape[1])
    guard rows > 0 else { return }
    guard d > 0 else { y.update(repeating: 0, count: rows); return }
    let dtype = matrix.dtype
    matrix.withUnsafeBytes { raw in
        let base = raw.baseAddress!
        Threading.parallelFor((rows + rowDotProductBlock - 1) / rowDotProductBlock) { block in
            let start = block * rowDotProductBlock, count = min(rowDotProductBlock, rows - start)
            if dtype == .f32 {
                BLAS.sgemv(rows: count, cols: d, a: base.assumingMemoryBound(to: Float.self) + start * d, lda: d,
                           x: vector, y: y + start)
            } else {
                Workspace.withScratch(count * d) { widened in
                    convertToF32(widened, base + start * d * dtype.byteSize, dtype: dtype, count: count * d)
                    BLAS.sgemv(rows: count, cols: d, a: widened, lda: d, x: vector, y: y + start)
                }
            }
        }
    }
}

/// Rows per GEMV in ``rowDotProducts(_:_:_:)``: a widened block of 768-wide rows
/// is 384 KB, inside a core's L2 cache.
let rowDotProductBlock = 128

/// ``rowDotProducts(_:_:_:)`` into a new array.
public func rowDotProducts(_ matrix: Tensor, _ vector: [Float]) -> [Float] {
    precondition(matrix.shape.count == 2 && vector.count == matrix.shape[1],
                 "rowDotProducts: a vector of \(vector.count) for rows of \(matrix.shape.last ?? 0)")
    guard matrix.shape[0] > 0 else { return [] }
    return [Float](unsafeUninitializedCapacity: matrix.shape[0]) { buffer, initialized in
        rowDotProducts(buffer.baseAddress!, matrix, vector)
        initialized = matrix.shape[0]
    }
}

/// Naive twin of ``rowDotProducts(_:_:_:)``: each row widened element by element,
/// accumulated in `Double`.
public func rowDotProductsNaive(_ y: UnsafeMutablePointer<Float>, _ matrix: Tensor, _ vector: UnsafePointer<Float>) {
    let (rows, d) = (matrix.shape[0], matrix.shape[1])
    let values = matrix.floats()
    for r in 0..<rows {
        var sum = 0.0
        for c in 0..<d { sum += Double(values[r * d + c]) * Double(vector[c]) }
        y[r] = Float(sum)
    }
}
