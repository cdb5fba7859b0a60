import NeuralCore

/// Where one projection (queries, keys or values) of a batch of sequences sits:
/// a tensor whose rows are tokens, sequence after sequence, with the projection
/// starting `column` floats into each row (0 for a plain `[B, T, C]` tensor; C or
/// 2C inside a fused `[B, T, 3C]` QKV buffer).
struct AttentionOperand {
    let tensor: Tensor
    var column = 0

    /// Floats per row.
    var rowStride: Int { tensor.shape.last ?? 0 }
}

/// Scaled dot-product attention of each of `batch` independent sequences:
/// sequence `b`'s queries are its `queryTokens` rows of `q`, its keys and values
/// its `keyTokens` rows of `k` and `v`. Returns the context `[B, Tq, H·D]` (before
/// the output projection).
func batchedAttention(q: AttentionOperand, k: AttentionOperand, v: AttentionOperand,
                      batch: Int, queryTokens: Int, keyTokens: Int, heads: Int, width: Int,
                      mask: (Int) -> SoftmaxMask) -> Tensor {
    Tensor(shape: [batch, queryTokens, width]) { out in
        withExtendedLifetime((q.tensor, k.tensor, v.tensor)) {
            batchedAttention(
                into: out, ldo: width,
                q: q.tensor.unsafeFloatPointer + q.column, ldq: q.rowStride,
                k: k.tensor.unsafeFloatPointer + k.column, ldk: k.rowStride,
                v: v.tensor.unsafeFloatPointer + v.column, ldv: v.rowStride,
                batch: batch, queryTokens: queryTokens, keyTokens: keyTokens, heads: heads, headDim: width / heads,
                mask: mask)
        }
    }
}

/// The one attention loop all the models' blocks share: for each sequence `b` and
/// head `h` (in parallel on ``Threading``'s threads, each pair with scratch of
/// its own), `softmax(Q·Kᵀ/√D)·V` over sequence `b`'s `queryTokens` query rows and
/// `keyTokens` key/value rows, written to the head's columns of `out`.
///
/// - Parameters:
///   - out: `[B·Tq, H·D]`, row stride `ldo`.
///   - q: `[B·Tq, H·D]`, row stride `ldq`.
///   - k, v: `[B·Tk, H·D]`, row strides `ldk`, `ldv`.
///   - mask: the mask of sequence `b`.
///   - sequenceRows: the rows from one sequence's first row to the next's, in all
///     four buffers, for sequences laid out with padding rows after them (nil:
///     `queryTokens` rows in `q` and `out`, `keyTokens` in `k` and `v`).
func batchedAttention(into out: UnsafeMutablePointer<Float>, ldo: Int,
                      q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
                      batch: Int, queryTokens: Int, keyTokens: Int, heads: Int, headDim: Int, sequenceRows: Int? = nil,
                      mask: (Int) -> SoftmaxMask) {
    let masks = (0..<batch).map(mask)
    let scale = 1 / Float(headDim).squareRoot()
    let (queryStride, keyStride) = (sequenceRows ?? queryTokens, sequenceRows ?? keyTokens)
    Threading.parallelFor(batch * heads) { index in
        let (b, column) = (index / heads, index % heads * headDim)
        Workspace.withScratch(queryTokens * keyTokens) { scratch in
            attentionHead(out + b * queryStride * ldo + column, ldo: ldo,
                          q: q + b * queryStride * ldq + column, ldq: ldq,
                          k: k + b * keyStride * ldk + column, ldk: ldk,
                          v: v + b * keyStride * ldv + column, ldv: ldv,
                          queryCount: queryTokens, keyCount: keyTokens, headDim: headDim, scale: scale,
                          mask: masks[b], scratch: scratch)
        }
    }
}
