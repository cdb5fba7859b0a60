// Scalar building blocks written so that loops over them auto-vectorise: only
// arithmetic, comparisons/selects and bit casts, no libm calls and no trapping
// conversions.

/// `e^x` to about 2 ulp for `x` in [-87.3, 88.7]; inputs are clamped to that range
/// (so very negative inputs give ~1e-38, not 0: callers that need exact zeros,
/// such as masked softmax entries, skip them instead).
///
/// Cody–Waite range reduction `x = n·ln2 + r`, |r| ≤ ln2/2, with `n` found by the
/// 1.5·2²³ rounding trick, then a degree-6 minimax polynomial (Cephes `expf`).
@inlinable @inline(__always)
public func fastExp(_ x: Float) -> Float {
    let clamped = Swift.min(Swift.max(x, -87.33), 88.37)
    let roundingMagic: Float = 12_582_912 // 1.5 · 2²³: adding it rounds to an integer
    let shifted = clamped * 1.442_695_04 + roundingMagic
    let n = shifted - roundingMagic
    var r = clamped - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * (r * r) + r + 1
    // 2ⁿ from the integer sitting in the low mantissa bits of `shifted`.
    let exponent = Int32(bitPattern: shifted.bitPattern) &- Int32(bitPattern: roundingMagic.bitPattern) &+ 127
    return y * Float(bitPattern: UInt32(bitPattern: exponent &<< 23))
}

/// The error function as `x·P(x²)/Q(x²)` for `|x| ≤ 3.95` and `±1` beyond (where
/// `erf` rounds to ±1 in `Float`): a rational minimax fit of degree 5 over 5
/// (`Weights/fixtures/fit_erf.py`), evaluated by Estrin's scheme; absolute error
/// ≤ 3.2e-7 in `Float` arithmetic. No `exp` and one division: about 40% less
/// time per GELU than Abramowitz & Stegun 7.1.26 (PyTorch's vectorised `erf`).
@inlinable @inline(__always)
public func fastErf(_ x: Float) -> Float {
    var a = x < 0 ? -x : x
    a = a > 3.95 ? 3.95 : a
    let t = a * a, t2 = t * t, t4 = t2 * t2
    let p = (1.128_379 + 0.194_036_02 * t) + t2 * (0.053_207_032 + 0.003_917_310_4 * t)
        + t4 * (0.000_287_596_8 + 2.011_693_8e-6 * t)
    let q = (1 + 0.505_291_46 * t) + t2 * (0.115_590_826 + 0.015_270_692 * t)
        + t4 * (0.001_198_192 + 3.783_900_3e-5 * t)
    var r = a * p / q
    r = r > 1 ? 1 : r
    return x < 0 ? -r : r
}

/// `tanh(x)` as `1 − 2 / (e^{2x} + 1)` (absolute error ~1e-7; exact ±1 at the tails).
@inlinable @inline(__always)
public func fastTanh(_ x: Float) -> Float {
    1 - 2 / (fastExp(2 * x) + 1)
}

// MARK: - Eight lanes at a time
//
// The same formulas on `SIMD8<Float>` (two SSE registers on the baseline x86-64
// target), for loops whose reductions the optimiser will not vectorise on its
// own (a float sum is not reassociable) and for kernels that handle whole rows.
// Each lane gives exactly the scalar function's result.

/// ``fastExp(_:)-(Float)`` on eight lanes.
@inlinable @inline(__always)
public func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let clamped = x.replacing(with: -87.33, where: x .< -87.33).replacing(with: 88.37, where: x .> 88.37)
    let roundingMagic: Float = 12_582_912
    let shifted = clamped * 1.442_695_04 + roundingMagic
    let n = shifted - roundingMagic
    var r = clamped - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * (r * r) + r + 1
    let exponent = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- Int32(bitPattern: roundingMagic.bitPattern) &+ 127
    return y * unsafeBitCast(exponent &<< 23, to: SIMD8<Float>.self)
}

/// ``fastErf(_:)-(Float)`` on eight lanes.
@inlinable @inline(__always)
public func fastErf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let negative = x .< 0
    var a = x.replacing(with: -x, where: negative)
    a = a.replacing(with: 3.95, where: a .> 3.95)
    let t = a * a, t2 = t * t, t4 = t2 * t2
    var p = (SIMD8<Float>(repeating: 1.128_379) + 0.194_036_02 * t) + t2 * (0.053_207_032 + 0.003_917_310_4 * t)
    p = p + t4 * (0.000_287_596_8 + 2.011_693_8e-6 * t)
    var q = (SIMD8<Float>(repeating: 1) + 0.505_291_46 * t) + t2 * (0.115_590_826 + 0.015_270_692 * t)
    q = q + t4 * (0.001_198_192 + 3.783_900_3e-5 * t)
    var r = a * p / q
    r = r.replacing(with: 1, where: r .> 1)
    // −0 − r, not 0 − r (SIMD negation), so that r = 0 turns into −0 as the scalar's `-r` does.
    return r.replacing(with: SIMD8<Float>(repeating: -0.0) - r, where: negative)
}

/// ``fastTanh(_:)-(Float)`` on eight lanes.
@inlinable @inline(__always)
public func fastTanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    1 - 2 / (fastExp(2 * x) + 1)
}

/// Eight floats from `p` (any alignment).
@inlinable @inline(__always)
public func loadVector(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores eight floats at `p` (any alignment).
@inlinable @inline(__always)
public func storeVector(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
