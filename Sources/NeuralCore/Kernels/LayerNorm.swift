/// Layer normalisation over the last dimension:
/// `y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · weight + bias`, with the biased
/// variance as PyTorch computes it. `y` may alias `x`. Rows run in parallel,
/// eight lanes at a time.
///
/// - Parameters:
///   - y: `[rows, cols]`.
///   - x: `[rows, cols]`.
///   - weight: `[cols]`.
///   - bias: `[cols]`.
///   - rows: the rows of `x` and `y`.
///   - cols: the width normalised over.
///   - eps: the checkpoint's `layer_norm_eps`.
public func layerNorm(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float
) {
    forEachRowBlock(rows: rows, cols: cols) { r in
        normalizeRow(y + r * cols, x + r * cols, weight: weight, bias: bias, cols: cols, eps: eps)
    }
}

/// ``layerNorm(_:_:weight:bias:rows:cols:eps:)`` of the residual stream `x`, which
/// then gets `addend` added to every row in the same pass: a pre-LayerNorm block
/// normalises its input for the next product and pre-loads that product's bias
/// into the stream, so the product accumulates onto it (`beta = 1`) and no
/// separate bias or residual pass is needed.
///
/// - Parameters:
///   - y: `[rows, cols]`, row stride `ldy` (must not alias `x`).
///   - ldy: the row stride of `y`.
///   - x: `[rows, cols]`, row stride `ldx`; becomes `x + addend`.
///   - ldx: the row stride of `x`.
///   - addend: `[cols]`, or nil for none.
///   - weight: `[cols]`.
///   - bias: `[cols]`.
///   - rows: the rows of `x` and `y`.
///   - cols: the width normalised over.
///   - eps: the checkpoint's `layer_norm_eps`.
public func layerNormAddingBias(
    _ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafeMutablePointer<Float>, ldx: Int,
    addend: UnsafePointer<Float>?, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float
) {
    forEachRowBlock(rows: rows, cols: cols) { r in
        let input = x + r * ldx
        normalizeRow(y + r * ldy, input, weight: weight, bias: bias, cols: cols, eps: eps)
        if let addend { addRow(input, addend, count: cols) }
    }
}

/// Naive twin of ``layerNormAddingBias(_:ldy:_:ldx:addend:weight:bias:rows:cols:eps:)``
/// (contiguous rows): ``layerNormNaive(_:_:weight:bias:rows:cols:eps:)``, then the
/// addend.
public func layerNormAddingBiasNaive(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, addend: UnsafePointer<Float>?,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int, eps: Float
) {
    layerNormNaive(y, x, weight: weight, bias: bias, rows: rows, cols: cols, eps: eps)
    if let addend { addBiasNaive(x, addend, rows: rows, cols: cols) }
}

/// Runs `body(row)` for every row, blocks of rows (~8K values each) in parallel.
@inline(__always)
func forEachRowBlock(rows: Int, cols: Int, _ body: (Int) -> Void) {
    let rowsPerBlock = max(1, 8192 / max(cols, 1))
    let blocks = (rows + rowsPerBlock - 1) / rowsPerBlock
    Threading.parallelFor(blocks) { block in
        for r in (block * rowsPerBlock)..<min(rows, (block + 1) * rowsPerBlock) { body(r) }
    }
}

/// One row of ``layerNorm(_:_:weight:bias:rows:cols:eps:)`` (`output` may alias `input`).
@inline(__always)
func normalizeRow(_ output: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                  weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, cols: Int, eps: Float) {
    let end = cols & ~7
    var sum8 = SIMD8<Float>()
    var c = 0
    while c < end {
        sum8 += loadVector(input + c)
        c &+= 8
    }
    var sum = sum8.sum()
    while c < cols {
        sum += input[c]
        c &+= 1
    }
    let mean = sum / Float(cols)
    var squares8 = SIMD8<Float>()
    c = 0
    while c < end {
        let d = loadVector(input + c) - mean
        squares8 += d * d
        c &+= 8
    }
    var squares = squares8.sum()
    while c < cols {
        let d = input[c] - mean
        squares += d * d
        c &+= 1
    }
    let inverse = 1 / (squares / Float(cols) + eps).squareRoot()
    c = 0
    while c < end {
        storeVector((loadVector(input + c) - mean) * inverse * loadVector(weight + c) + loadVector(bias + c), output + c)
        c &+= 8
    }
    while c < cols {
        output[c] = (input[c] - mean) * inverse * weight[c] + bias[c]
        c &+= 1
    }
}

/// `row[c] += addend[c]` for `count` values.
@inline(__always)
func addRow(_ row: UnsafeMutablePointer<Float>, _ addend: UnsafePointer<Float>, count: Int) {
    var c = 0
    while c &+ 8 <= count {
        storeVector(loadVector(row + c) + loadVector(addend + c), row + c)
        c &+= 8
    }
    while c < count {
        row[c] += addend[c]
        c &+= 1
    }
}

/// Naive twin of ``layerNorm(_:_:weight:bias:rows:cols:eps:)``, in `Double`.
public func layerNormNaive(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float
) {
    for r in 0..<rows {
        var mean = 0.0
        for c in 0..<cols { mean += Double(x[r * cols + c]) }
        mean /= Double(cols)
        var variance = 0.0
        for c in 0..<cols { variance += (Double(x[r * cols + c]) - mean) * (Double(x[r * cols + c]) - mean) }
        variance /= Double(cols)
        for c in 0..<cols {
            let normalised = (Double(x[r * cols + c]) - mean) / (variance + Double(eps)).squareRoot()
            y[r * cols + c] = Float(normalised * Double(weight[c]) + Double(bias[c]))
        }
    }
}
