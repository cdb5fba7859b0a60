import Foundation

/// Multi-head scaled dot-product attention for one sequence, through GEMM.
///
/// Per head `h`: `S = scale · Q_h · K_hᵀ` (`[Tq, Tk]`), masked row softmax, then
/// `O_h = S · V_h`. Heads are the `D`-wide column blocks of `[T, H·D]` rows, read
/// in place through the leading dimensions (so fused QKV buffers and KV caches
/// need no copies). Self-attention, cross-attention and incremental decoding
/// against a KV cache are all this one function: for a decoder step, `k`/`v` hold
/// the cached keys plus the new ones and `mask.causalOffset` is the cache length.
/// Heads run in parallel on ``Threading``'s threads (each with scratch of its own
/// from ``Workspace``).
///
/// - Parameters:
///   - out: `[Tq, H·D]`, row stride `ldo`.
///   - ldo: the row stride of `out`.
///   - q: `[Tq, H·D]`, row stride `ldq`.
///   - ldq: the row stride of `q`.
///   - k: `[Tk, H·D]`, row stride `ldk`.
///   - ldk: the row stride of `k`.
///   - v: `[Tk, H·D]`, row stride `ldv`.
///   - ldv: the row stride of `v`.
///   - queryCount: `Tq`.
///   - keyCount: `Tk`.
///   - heads: `H`.
///   - headDim: `D`.
///   - scale: usually `1/√D`.
///   - mask: causal and/or padding mask over the `Tk` keys.
///   - scratch: `Tq·Tk` floats of workspace, used when the heads run one after
///     another on the calling thread.
public func multiHeadAttention(
    _ out: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int,
    k: UnsafePointer<Float>, ldk: Int,
    v: UnsafePointer<Float>, ldv: Int,
    queryCount: Int, keyCount: Int, heads: Int, headDim: Int,
    scale: Float, mask: SoftmaxMask = .none,
    scratch: UnsafeMutablePointer<Float>
) {
    if Threading.threadCount == 1 || Threading.isInParallelLoop || heads == 1 {
        for h in 0..<heads {
            let column = h * headDim
            attentionHead(out + column, ldo: ldo, q: q + column, ldq: ldq, k: k + column, ldk: ldk, v: v + column, ldv: ldv,
                          queryCount: queryCount, keyCount: keyCount, headDim: headDim, scale: scale, mask: mask, scratch: scratch)
        }
        return
    }
    Threading.parallelFor(heads) { h in
        let column = h * headDim
        Workspace.withScratch(queryCount * keyCount) { scratch in
            attentionHead(out + column, ldo: ldo, q: q + column, ldq: ldq, k: k + column, ldk: ldk, v: v + column, ldv: ldv,
                          queryCount: queryCount, keyCount: keyCount, headDim: headDim, scale: scale, mask: mask, scratch: scratch)
        }
    }
}

/// One head of ``multiHeadAttention(_:ldo:q:ldq:k:ldk:v:ldv:queryCount:keyCount:heads:headDim:scale:mask:scratch:)``:
/// `out[Tq, D] = softmax(scale · q · kᵀ, mask) · v`, two products and a row
/// softmax on the calling thread.
///
/// - Parameters:
///   - out: `[Tq, D]`, row stride `ldo`.
///   - ldo: the row stride of `out`.
///   - q: `[Tq, D]`, row stride `ldq`.
///   - ldq: the row stride of `q`.
///   - k: `[Tk, D]`, row stride `ldk`.
///   - ldk: the row stride of `k`.
///   - v: `[Tk, D]`, row stride `ldv`.
///   - ldv: the row stride of `v`.
///   - queryCount: `Tq`.
///   - keyCount: `Tk`.
///   - headDim: `D`.
///   - scale: usually `1/√D`.
///   - mask: causal and/or padding mask over the `Tk` keys.
///   - scratch: `Tq·Tk` floats.
public func attentionHead(
    _ out: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
    queryCount: Int, keyCount: Int, headDim: Int, scale: Float, mask: SoftmaxMask, scratch: UnsafeMutablePointer<Float>
) {
    sgemm(transposeB: true, m: queryCount, n: keyCount, k: headDim, alpha: scale,
          a: q, lda: ldq, b: k, ldb: ldk, c: scratch, ldc: keyCount)
    softmaxRows(scratch, rows: queryCount, cols: keyCount, mask: mask)
    sgemm(m: queryCount, n: headDim, k: keyCount, a: scratch, lda: keyCount, b: v, ldb: ldv, c: out, ldc: ldo)
}

/// Naive twin of ``multiHeadAttention(_:ldo:q:ldq:k:ldk:v:ldv:queryCount:keyCount:heads:headDim:scale:mask:scratch:)``
/// (contiguous `[T, H·D]` rows): explicit loops in `Double`.
public func multiHeadAttentionNaive(
    _ out: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    queryCount: Int, keyCount: Int, heads: Int, headDim: Int,
    scale: Float, mask: SoftmaxMask = .none
) {
    let width = heads * headDim
    var scores = [Double](repeating: 0, count: keyCount)
    for h in 0..<heads {
        for i in 0..<queryCount {
            let visible = mask.visibleColumns(row: i, cols: keyCount)
            var maximum = -Double.infinity
            for j in 0..<visible {
                var dot = 0.0
                for d in 0..<headDim { dot += Double(q[i * width + h * headDim + d]) * Double(k[j * width + h * headDim + d]) }
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
                for j in 0..<visible { acc += scores[j] / sum * Double(v[j * width + h * headDim + d]) }
                out[i * width + h * headDim + d] = Float(acc)
            }
        }
    }
}

extension Double {
    /// `e^self` (libm), for the naive twins.
    var exponential: Double { Foundation.exp(self) }
}
