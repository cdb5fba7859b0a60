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

/// Naive twin of ``prefixCausalAttention(_:ldo:q:ldq:kSuffix:ldk:vSuffix:ldv:kPrefix:vPrefix:candidates:suffixLength:prefixLength:heads:headDim:scale:scratch:)``
/// (contiguous `[·, H·D]` rows): for each candidate, the keys and values of
/// `prefix + suffix` are laid end to end and every suffix query attends causally
/// to them with explicit loops in `Double`.
public func prefixCausalAttentionNaive(
    _ out: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, kSuffix: UnsafePointer<Float>, vSuffix: UnsafePointer<Float>,
    kPrefix: UnsafePointer<Float>, vPrefix: UnsafePointer<Float>,
    candidates: Int, suffixLength: Int, prefixLength: Int, heads: Int, headDim: Int, scale: Float
) {
    let width = heads * headDim
    func key(_ b: Int, _ j: Int) -> UnsafePointer<Float> {
        j < prefixLength ? kPrefix + j * width : kSuffix + (b * suffixLength + j - prefixLength) * width
    }
    func value(_ b: Int, _ j: Int) -> UnsafePointer<Float> {
        j < prefixLength ? vPrefix + j * width : vSuffix + (b * suffixLength + j - prefixLength) * width
    }
    var scores = [Double](repeating: 0, count: prefixLength + suffixLength)
    for b in 0..<candidates {
        for i in 0..<suffixLength {
            let row = b * suffixLength + i
            let visible = prefixLength + i + 1
            for h in 0..<heads {
                let column = h * headDim
                var maximum = -Double.infinity
                for j in 0..<visible {
                    var dot = 0.0
                    for d in 0..<headDim { dot += Double(q[row * width + column + d]) * Double(key(b, j)[column + d]) }
                    scores[j] = dot * Double(scale)
                    maximum = max(maximum, scores[j])
                }
                var sum = 0.0
                for j in 0..<visible {
                    scores[j] = (scores[j] - maximum).exponential
                    sum += scores[j]
                }
                for d in 0..<headDim {
                    var acc = 0.0
                    for j in 0..<visible { acc += scores[j] / sum * Double(value(b, j)[column + d]) }
                    out[row * width + column + d] = Float(acc)
                }
            }
        }
    }
}
