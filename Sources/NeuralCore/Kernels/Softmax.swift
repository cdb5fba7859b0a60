import Foundation

/// Which entries of a score row take part in a softmax.
///
/// Row `i` of a `[rows, cols]` block sees columns `0..<visibleColumns(row: i)`;
/// the rest are treated as −∞ and come out as exact zeros.
public struct SoftmaxMask: Sendable, Equatable {
    /// When set, row `i` (at absolute position `causalOffset + i`) sees only
    /// columns `j ≤ causalOffset + i`, as a causal decoder does with `causalOffset`
    /// tokens already in its key/value cache.
    public var causalOffset: Int?
    /// When set, only the first `validColumns` columns are real keys (padding mask).
    public var validColumns: Int?

    /// No masking.
    public static let none = SoftmaxMask()

    /// Creates a mask; both parts are optional.
    public init(causalOffset: Int? = nil, validColumns: Int? = nil) {
        self.causalOffset = causalOffset
        self.validColumns = validColumns
    }

    /// The number of leading columns row `row` attends to, out of `cols`.
    @inlinable
    public func visibleColumns(row: Int, cols: Int) -> Int {
        var visible = cols
        if let validColumns { visible = min(visible, validColumns) }
        if let causalOffset { visible = min(visible, causalOffset + row + 1) }
        return max(visible, 0)
    }
}

/// Row softmax in place with an optional causal/padding mask, eight lanes at a
/// time.
///
/// - Parameters:
///   - x: `[rows, cols]`, row stride `ld` (default `cols`).
///   - rows: the rows of `x`.
///   - cols: the columns of each row.
///   - ld: the row stride of `x` (default `cols`).
///   - mask: which columns each row sees; masked entries become 0.
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil, mask: SoftmaxMask = .none) {
    let ld = ld ?? cols
    for r in 0..<rows {
        let row = x + r * ld
        let visible = mask.visibleColumns(row: r, cols: cols)
        let sum = exponentiateShifted(row, count: visible, maximum: rowMaximum(row, count: visible))
        scaleRow(row, count: visible, by: 1 / sum)
        if visible < cols { (row + visible).update(repeating: 0, count: cols - visible) }
    }
}

/// The largest of `count` values (−∞ for none).
@inline(__always)
func rowMaximum(_ row: UnsafePointer<Float>, count: Int) -> Float {
    var maximum = SIMD8<Float>(repeating: -.infinity)
    var c = 0
    while c &+ 8 <= count {
        let v = loadVector(row + c)
        maximum = maximum.replacing(with: v, where: v .> maximum)
        c &+= 8
    }
    var result = maximum.max()
    while c < count {
        result = Swift.max(result, row[c])
        c &+= 1
    }
    return result
}

/// `row[c] = e^(row[c] − maximum)` for `count` values; returns their sum.
@inline(__always)
func exponentiateShifted(_ row: UnsafeMutablePointer<Float>, count: Int, maximum: Float) -> Float {
    var sum = SIMD8<Float>()
    var c = 0
    while c &+ 8 <= count {
        let e = fastExp(loadVector(row + c) - maximum)
        storeVector(e, row + c)
        sum += e
        c &+= 8
    }
    var result = sum.sum()
    while c < count {
        let e = fastExp(row[c] - maximum)
        row[c] = e
        result += e
        c &+= 1
    }
    return result
}

/// `row[c] *= factor` for `count` values.
@inline(__always)
func scaleRow(_ row: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
    var c = 0
    while c &+ 8 <= count {
        storeVector(loadVector(row + c) * factor, row + c)
        c &+= 8
    }
    while c < count {
        row[c] *= factor
        c &+= 1
    }
}

/// Naive twin of ``softmaxRows(_:rows:cols:ld:mask:)`` (contiguous rows), in `Double`.
public func softmaxRowsNaive(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, mask: SoftmaxMask = .none) {
    for r in 0..<rows {
        let visible = mask.visibleColumns(row: r, cols: cols)
        var maximum = -Double.infinity
        for c in 0..<visible { maximum = max(maximum, Double(x[r * cols + c])) }
        var sum = 0.0
        for c in 0..<visible { sum += exp(Double(x[r * cols + c]) - maximum) }
        for c in 0..<cols {
            x[r * cols + c] = c < visible ? Float(exp(Double(x[r * cols + c]) - maximum) / sum) : 0
        }
    }
}
