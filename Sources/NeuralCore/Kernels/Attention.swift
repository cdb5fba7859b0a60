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
/// from ``Workspace``). A single query (a decoder step) reads the keys and values
/// row by row for all heads at once instead of one column block per head, with
/// the same result bit for bit; `scratch` is then not used.
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
    if queryCount == 1 {
        singleQueryAttention(out, q: q, k: k, ldk: ldk, v: v, ldv: ldv, keyCount: keyCount, heads: heads,
                             headDim: headDim, scale: scale, mask: mask)
        return
    }
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

/// One query against `keyCount` keys, every head: a decoder step's attention
/// over its KV cache, or over an image's cross-attention keys. The keys and values
/// are read row by row, each `H·D`-wide row once and in order, where
/// ``attentionHead(_:ldo:q:ldq:k:ldk:v:ldv:queryCount:keyCount:headDim:scale:mask:scratch:)``
/// would read a `D`-wide column block of every row, head after head: a stream the
/// hardware prefetches instead of `H` strided passes. Each head's scores, softmax
/// and weighted sum are summed in exactly the order the skinny kernels sum them
/// for one query row (scores as `skinnyDot`; values key after key), so the
/// result is the same bits as head by head. With several threads the heads
/// are split between them.
func singleQueryAttention(
    _ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
    k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
    keyCount: Int, heads: Int, headDim: Int, scale: Float, mask: SoftmaxMask
) {
    let groups = Threading.threadCount == 1 || Threading.isInParallelLoop ? 1 : min(heads, Threading.threadCount)
    Workspace.withScratch(heads * keyCount) { scores in
        func run(_ group: Int) {
            let firstHead = heads * group / groups, endHead = heads * (group + 1) / groups
            for j in 0..<keyCount {
                let keyRow = k + j * ldk
                for h in firstHead..<endHead {
                    let sum = skinnyDot(q + h * headDim, keyRow + h * headDim, k: headDim, column: j, columns: keyCount)
                    scores[h * keyCount + j] = scale * sum
                }
            }
            for h in firstHead..<endHead {
                softmaxRows(scores + h * keyCount, rows: 1, cols: keyCount, mask: mask)
                (out + h * headDim).update(repeating: 0, count: headDim)
            }
            for j in 0..<keyCount {
                let valueRow = v + j * ldv
                for h in firstHead..<endHead {
                    let weight = scores[h * keyCount + j]
                    let (output, value) = (out + h * headDim, valueRow + h * headDim)
                    var c = 0
                    while c &+ 4 <= headDim {
                        let sum = UnsafeRawPointer(output + c).loadUnaligned(as: SIMD4<Float>.self)
                            + SIMD4(repeating: weight) * UnsafeRawPointer(value + c).loadUnaligned(as: SIMD4<Float>.self)
                        UnsafeMutableRawPointer(output + c).storeBytes(of: sum, as: SIMD4<Float>.self)
                        c &+= 4
                    }
                    while c < headDim {
                        output[c] += weight * value[c]
                        c &+= 1
                    }
                }
            }
        }
        if groups == 1 { run(0) } else { Threading.parallelFor(groups, run) }
    }
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
