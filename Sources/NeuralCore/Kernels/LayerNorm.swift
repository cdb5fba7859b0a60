/// Layer normalisation over the last dimension:
/// `y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · weight + bias`, with the biased
/// variance as PyTorch computes it. `y` may alias `x`. Rows run in parallel.
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
    let rowsPerBlock = max(1, 8192 / max(cols, 1))
    let blocks = (rows + rowsPerBlock - 1) / rowsPerBlock
    Threading.parallelFor(blocks) { block in
        for r in (block * rowsPerBlock)..<min(rows, (block + 1) * rowsPerBlock) {
            let input = x + r * cols
            let output = y + r * cols
            var sum: Float = 0
            for c in 0..<cols { sum += input[c] }
            let mean = sum / Float(cols)
            var squares: Float = 0
            for c in 0..<cols {
                let d = input[c] - mean
                squares += d * d
            }
            let inverse = 1 / (squares / Float(cols) + eps).squareRoot()
            for c in 0..<cols { output[c] = (input[c] - mean) * inverse * weight[c] + bias[c] }
        }
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
