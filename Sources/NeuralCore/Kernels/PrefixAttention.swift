/// Causal multi-head attention of many continuations of one shared prefix: the
/// prefix's keys and values are computed once, and each of `B` candidates adds
/// `S` tokens of its own. Query row `i` of candidate `b` attends to every prefix
/// key and to its own keys `0...i`, exactly as the full causal sequence
/// `prefix + suffix_b` would.
///
/// The prefix part runs as one GEMM per head over all `B·S` query rows; only the
/// small `S×S` suffix blocks are per candidate.
///
/// - Parameters:
///   - out: `[B·S, H·D]`, row stride `ldo`.
///   - q, kSuffix, vSuffix: `[B·S, H·D]`, row strides `ldq`, `ldk`, `ldv`.
///   - kPrefix, vPrefix: `[P, H·D]` (contiguous).
///   - scratch: `B·S·(P + S)` floats.
public func prefixCausalAttention(
    _ out: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int,
    kSuffix: UnsafePointer<Float>, ldk: Int,
    vSuffix: UnsafePointer<Float>, ldv: Int,
    kPrefix: UnsafePointer<Float>, vPrefix: UnsafePointer<Float>,
    candidates: Int, suffixLength: Int, prefixLength: Int, heads: Int, headDim: Int, scale: Float,
    scratch: UnsafeMutablePointer<Float>
) {
    let rows = candidates * suffixLength
    let width = heads * headDim
    let prefixScores = scratch // [B·S, P]
    let suffixScores = scratch + rows * prefixLength // [B·S, S]
    for h in 0..<heads {
        let column = h * headDim
        sgemm(transposeB: true, m: rows, n: prefixLength, k: headDim, alpha: scale,
              a: q + column, lda: ldq, b: kPrefix + column, ldb: width, c: prefixScores, ldc: prefixLength)
        for b in 0..<candidates {
            let first = b * suffixLength
            sgemm(transposeB: true, m: suffixLength, n: suffixLength, k: headDim, alpha: scale,
                  a: q + first * ldq + column, lda: ldq, b: kSuffix + first * ldk + column, ldb: ldk,
                  c: suffixScores + first * suffixLength, ldc: suffixLength)
        }
        // Softmax over [prefix scores | own suffix scores 0...i] jointly.
        for r in 0..<rows {
            let i = r % suffixLength
            let p = prefixScores + r * prefixLength, s = suffixScores + r * suffixLength
            var maximum = -Float.infinity
            for j in 0..<prefixLength { maximum = Swift.max(maximum, p[j]) }
            for j in 0...i { maximum = Swift.max(maximum, s[j]) }
            var sum: Float = 0
            for j in 0..<prefixLength { p[j] = fastExp(p[j] - maximum); sum += p[j] }
            for j in 0...i { s[j] = fastExp(s[j] - maximum); sum += s[j] }
            let inverse = 1 / sum
            for j in 0..<prefixLength { p[j] *= inverse }
            for j in 0..<suffixLength { s[j] = j <= i ? s[j] * inverse : 0 }
        }
        sgemm(m: rows, n: headDim, k: prefixLength, a: prefixScores, lda: prefixLength,
              b: vPrefix + column, ldb: width, c: out + column, ldc: ldo)
        for b in 0..<candidates {
            let first = b * suffixLength
            sgemm(m: suffixLength, n: headDim, k: suffixLength, a: suffixScores + first * suffixLength, lda: suffixLength,
                  b: vSuffix + first * ldv + column, ldb: ldv, beta: 1, c: out + first * ldo + column, ldc: ldo)
        }
    }
}
