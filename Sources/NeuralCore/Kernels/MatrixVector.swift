/// The dot product of every row of `matrix` `[N, D]` with `vector` `[D]`: how
/// similar each of many embeddings is to one (labels to an image).
///
/// F32 rows are read in place by one GEMV; F16/BF16 rows (label tables are
/// stored in F16) are widened block by block into workspace scratch, so a large
/// half-precision table never exists in F32 as a whole.
/// - Parameters:
///   - y: `[N]`.
///   - matrix: `[N, D]`, any float storage.
///   - vector: `[D]`.
public func rowDotProducts(_ y: UnsafeMutablePointer<Float>, _ matrix: Tensor, _ vector: UnsafePointer<Float>) {
    precondition(matrix.shape.count == 2 && matrix.dtype.isFloatStorage, "rowDotProducts takes a [N, D] float matrix, not \(matrix.shape) \(matrix.dtype)")
    let (rows, d) = (matrix.shape[0], matrix.shape[1])
    guard rows > 0 else { return }
    guard d > 0 else { y.update(repeating: 0, count: rows); return }
    if matrix.dtype == .f32 {
        withExtendedLifetime(matrix) {
            sgemm(m: rows, n: 1, k: d, a: matrix.unsafeFloatPointer, lda: d, b: vector, ldb: 1, c: y, ldc: 1)
        }
        return
    }
    let block = min(rows, rowDotProductBlock)
    Workspace.withScratch(block * d) { widened in
        matrix.withUnsafeBytes { raw in
            for start in stride(from: 0, to: rows, by: block) {
                let count = min(block, rows - start)
                convertToF32(widened, raw.baseAddress! + start * d * matrix.dtype.byteSize, dtype: matrix.dtype, count: count * d)
                sgemm(m: count, n: 1, k: d, a: widened, lda: d, b: vector, ldb: 1, c: y + start, ldc: 1)
            }
        }
    }
}

/// Rows of a half-precision matrix widened per GEMV by ``rowDotProducts(_:_:_:)``.
let rowDotProductBlock = 4096

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
