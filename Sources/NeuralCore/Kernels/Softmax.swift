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

/// Row softmax in place with an optional causal/padding mask.
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
        var maximum = -Float.infinity
        for c in 0..<visible { maximum = Swift.max(maximum, row[c]) }
        var sum: Float = 0
        for c in 0..<visible {
            let e = fastExp(row[c] - maximum)
            row[c] = e
            sum += e
        }
        let inverse = 1 / sum
        for c in 0..<visible { row[c] *= inverse }
        for c in visible..<max(visible, cols) { row[c] = 0 }
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
