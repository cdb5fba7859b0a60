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
/// the output projection). The one loop all the models' attention blocks share.
func batchedAttention(q: AttentionOperand, k: AttentionOperand, v: AttentionOperand,
                      batch: Int, queryTokens: Int, keyTokens: Int, heads: Int, width: Int,
                      mask: (Int) -> SoftmaxMask) -> Tensor {
    let headDim = width / heads
    return Tensor(shape: [batch, queryTokens, width]) { out in
        withExtendedLifetime((q.tensor, k.tensor, v.tensor)) {
            Workspace.withScratch(queryTokens * keyTokens) { scratch in
                for b in 0..<batch {
                    multiHeadAttention(
                        out + b * queryTokens * width, ldo: width,
                        q: q.tensor.unsafeFloatPointer + b * queryTokens * q.rowStride + q.column, ldq: q.rowStride,
                        k: k.tensor.unsafeFloatPointer + b * keyTokens * k.rowStride + k.column, ldk: k.rowStride,
                        v: v.tensor.unsafeFloatPointer + b * keyTokens * v.rowStride + v.column, ldv: v.rowStride,
                        queryCount: queryTokens, keyCount: keyTokens, heads: heads, headDim: headDim,
                        scale: 1 / Float(headDim).squareRoot(), mask: mask(b), scratch: scratch)
                }
            }
        }
    }
}
