/// Adds a bias row to every row: `x[r, c] += bias[c]`.
/// - Parameters:
///   - x: `[rows, cols]`.
///   - bias: `[cols]`.
///   - rows: the rows of `x`.
///   - cols: the width of `x` and `bias`.
public func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        for c in 0..<cols { row[c] += bias[c] }
    }
}

/// Naive twin of ``addBias(_:_:rows:cols:)``.
public func addBiasNaive(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, cols: Int) {
    for i in 0..<(rows * cols) { x[i] = x[i] + bias[i % cols] }
}

/// Residual connection in place: `y[i] += x[i]` for `count` values.
public func addResidual(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    forEachBlock(count) { start, end in
        for i in start..<end { y[i] += x[i] }
    }
}

/// Naive twin of ``addResidual(_:_:count:)``.
public func addResidualNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i < count {
        y[i] = y[i] + x[i]
        i += 1
    }
}

/// Scales each row to unit L2 norm in place (rows of zeros stay zero), as
/// `x / x.norm(dim=-1, keepdim=True)`.
/// - Parameters:
///   - x: `[rows, cols]`.
///   - rows: the rows of `x`.
///   - cols: the width of `x`.
public func l2NormalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        var sum: Float = 0
        for c in 0..<cols { sum += row[c] * row[c] }
        guard sum > 0 else { continue }
        let inverse = 1 / sum.squareRoot()
        for c in 0..<cols { row[c] *= inverse }
    }
}

/// Naive twin of ``l2NormalizeRows(_:rows:cols:)``: the norm accumulated in `Double`.
public func l2NormalizeRowsNaive(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        var sum = 0.0
        for c in 0..<cols { sum += Double(x[r * cols + c]) * Double(x[r * cols + c]) }
        guard sum > 0 else { continue }
        let norm = sum.squareRoot()
        for c in 0..<cols { x[r * cols + c] = Float(Double(x[r * cols + c]) / norm) }
    }
}
