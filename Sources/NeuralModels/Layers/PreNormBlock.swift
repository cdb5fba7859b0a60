// The forward pass of a pre-LayerNorm transformer block (CLIP's encoder layers,
// BLIP's vision layers), written once over raw buffers:
//
//   h   = x + out_proj(attention(ln1(x)))
//   out = h + fc2(act(fc1(ln2(h))))
//
// The residual stream is updated in place and every intermediate lives in
// workspace scratch, so a tower's layer loop allocates nothing. Biases ride along
// with passes that happen anyway: each LayerNorm pass also adds the bias of the
// product that will accumulate onto the stream (`beta = 1`), and fc1's bias is
// added by the activation pass.
import NeuralCore

/// Where a block's queries, keys and values come from: three projections (CLIP's
/// `q_proj`, `k_proj`, `v_proj`) or one fused `[3C, C]` projection (BLIP's `qkv`,
/// output columns `q | k | v`).
enum QKVProjection {
    case separate(query: Linear, key: Linear, value: Linear)
    case fused(Linear)

    /// The weight `[C, C]` and bias `[C]` of part 0 (queries), 1 (keys) or 2 (values).
    func part(_ index: Int, width: Int) -> (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?) {
        switch self {
        case let .separate(query, key, value):
            let linear = [query, key, value][index]
            return (linear.weight.unsafeFloatPointer, linear.bias?.unsafeFloatPointer)
        case let .fused(qkv):
            return (qkv.weight.unsafeFloatPointer + index * width * width, qkv.bias.map { $0.unsafeFloatPointer + index * width })
        }
    }

    /// The tensors the pointers of ``part(_:width:)`` point into.
    var tensors: [Tensor?] {
        switch self {
        case let .separate(query, key, value): [query.weight, query.bias, key.weight, key.bias, value.weight, value.bias]
        case let .fused(qkv): [qkv.weight, qkv.bias]
        }
    }

    /// Parts `parts` of `rows` rows of `x` (`[rows, C]`, row stride `ldx`), written
    /// side by side into `out` (`[rows, parts.count·C]`, row stride `ldo`); one
    /// product when the parts are contiguous in a fused weight.
    func project(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ x: UnsafePointer<Float>, ldx: Int, rows: Int,
                 width: Int, parts: Range<Int>, rowExact: Bool = false) {
        withExtendedLifetime(tensors) {
            if case .fused = self {
                let (weight, bias) = part(parts.lowerBound, width: width)
                linearForward(out, x, weight: weight, bias: bias, rows: rows, inFeatures: width,
                              outFeatures: parts.count * width, ldx: ldx, ldy: ldo, rowExact: rowExact)
                return
            }
            for (slot, index) in parts.enumerated() {
                let (weight, bias) = part(index, width: width)
                linearForward(out + slot * width, x, weight: weight, bias: bias, rows: rows, inFeatures: width,
                              outFeatures: width, ldx: ldx, ldy: ldo, rowExact: rowExact)
            }
        }
    }
}

/// A pre-LayerNorm transformer block's weights, viewed from the model's own
/// layer types (`CLIPEncoderLayer`, `BlipEncoderLayer`).
struct PreNormBlock {
    let layerNorm1: LayerNorm
    let qkv: QKVProjection
    let outputProjection: Linear
    let layerNorm2: LayerNorm
    let fc1: Linear
    let fc2: Linear
    let activation: Activation
    let heads: Int

    var width: Int { layerNorm1.size }

    /// Runs the block in place on `hidden` `[B·T, C]` (`batch` sequences of
    /// `tokens` tokens), each sequence attending to itself (causally when
    /// `causal`). With `keysValues` (`[B·T, 2C]`), also writes every token's
    /// attention key and value there (for a prefix cache). With `batchExact`
    /// (the image towers), each sequence's result equals the sequence's alone, bit
    /// for bit: where the BLAS kernel's sums for a row depend on the row's place in
    /// the product (`BLAS.rowAlignment` > 1), the block runs on a copy with each
    /// sequence padded to a multiple of that many rows, and its products are
    /// `rowExact`. Without it (text batches, where short sequences would mostly be
    /// padding) a sequence's last bits may depend on the batch on such kernels.
    func forward(_ hidden: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, causal: Bool,
                 keysValues: UnsafeMutablePointer<Float>? = nil, batchExact: Bool) {
        let alignment = batchExact ? BLAS.rowAlignment : 1, c = width
        let stride = (tokens + alignment - 1) / alignment * alignment
        guard stride != tokens else {
            forward(hidden, batch: batch, tokens: tokens, sequenceRows: tokens, causal: causal, keysValues: keysValues,
                    rowExact: batchExact)
            return
        }
        Workspace.withScratch(batch * stride * c) { padded in
            for b in 0..<batch {
                (padded + b * stride * c).update(from: hidden + b * tokens * c, count: tokens * c)
                (padded + (b * stride + tokens) * c).initialize(repeating: 0, count: (stride - tokens) * c)
            }
            forward(padded, batch: batch, tokens: tokens, sequenceRows: stride, causal: causal, keysValues: keysValues,
                    rowExact: batchExact)
            for b in 0..<batch { (hidden + b * tokens * c).update(from: padded + b * stride * c, count: tokens * c) }
        }
    }

    /// ``forward(_:batch:tokens:causal:keysValues:batchExact:)`` on sequences laid out
    /// `sequenceRows` ≥ `tokens` rows apart in `hidden` (the rows after each
    /// sequence's tokens are padding: carried through the products, never attended
    /// to, their values discarded); `keysValues` is unpadded. `rowExact`: the
    /// products' (see ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:rowExact:)``).
    private func forward(_ hidden: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, sequenceRows: Int, causal: Bool,
                         keysValues: UnsafeMutablePointer<Float>?, rowExact: Bool) {
        let rows = batch * sequenceRows, c = width, inner = fc1.outFeatures
        withExtendedLifetime(self) {
            // [rows, C] normalised input / attention context, then [rows, max(3C, I)] q|k|v / fc1 output.
            Workspace.withScratch(rows * (c + max(3 * c, inner))) { scratch in
                let normed = scratch, wide = scratch + rows * c
                layerNormAddingBias(normed, ldy: c, hidden, ldx: c, addend: outputProjection.bias?.unsafeFloatPointer,
                                    weight: layerNorm1.weight.unsafeFloatPointer, bias: layerNorm1.bias.unsafeFloatPointer,
                                    rows: rows, cols: c, eps: layerNorm1.eps)
                qkv.project(wide, ldo: 3 * c, normed, ldx: c, rows: rows, width: c, parts: 0..<3, rowExact: rowExact)
                if let keysValues {
                    for b in 0..<batch {
                        for t in 0..<tokens {
                            (keysValues + (b * tokens + t) * 2 * c).update(from: wide + (b * sequenceRows + t) * 3 * c + c, count: 2 * c)
                        }
                    }
                }
                batchedAttention(into: normed, ldo: c, q: wide, ldq: 3 * c, k: wide + c, ldk: 3 * c, v: wide + 2 * c, ldv: 3 * c,
                                 batch: batch, queryTokens: tokens, keyTokens: tokens, heads: heads, headDim: c / heads,
                                 sequenceRows: sequenceRows) { _ in
                    causal ? SoftmaxMask(causalOffset: 0) : .none
                }
                sgemm(transposeB: true, m: rows, n: c, k: c, a: normed, lda: c, b: outputProjection.weight.unsafeFloatPointer,
                      ldb: c, beta: 1, c: hidden, ldc: c, rowExact: rowExact)
                feedForward(hidden, rows: rows, normed: normed, inner: wide, rowExact: rowExact)
            }
        }
    }

    /// The block's output at one row of each sequence only, `[B, C]` into `out`:
    /// every token's key and value are computed, the rest of the block only for
    /// row `row` of each of the `batch` sequences in `hidden` `[B·T, C]` (read
    /// only). A tower's last layer, when only one token per sequence is pooled
    /// (CLIP's class token, or the end token of a causal text). The pooled rows'
    /// products run in groups of at most `skinnyMaxRows` rows and, with
    /// `batchExact`, the keys and values sequence by sequence where the BLAS needs
    /// it (see ``forward(_:batch:tokens:causal:keysValues:batchExact:)``), so a
    /// sequence's result does not depend on how many are encoded with it.
    func forward(pooling row: Int, of hidden: UnsafePointer<Float>, batch: Int, tokens: Int, causal: Bool,
                 batchExact: Bool, into out: UnsafeMutablePointer<Float>) {
        let rows = batch * tokens, c = width, inner = fc1.outFeatures
        withExtendedLifetime(self) {
            // [rows, C] normalised input, [rows, 2C] keys|values, [B, C] queries, [B, C] context, [B, I] fc1.
            Workspace.withScratch(rows * 3 * c + batch * (2 * c + inner)) { scratch in
                let normed = scratch, keysValues = scratch + rows * c
                let queries = keysValues + rows * 2 * c, context = queries + batch * c, wide = context + batch * c
                layerNorm(normed, hidden, weight: layerNorm1.weight.unsafeFloatPointer, bias: layerNorm1.bias.unsafeFloatPointer,
                          rows: rows, cols: c, eps: layerNorm1.eps)
                // Keys and values of every token; with batchExact, sequence by sequence where a
                // row's sums depend on its place in the product.
                let sequencesPerProduct = batchExact && BLAS.rowAlignment > 1 ? 1 : batch
                for first in stride(from: 0, to: batch, by: sequencesPerProduct) {
                    qkv.project(keysValues + first * tokens * 2 * c, ldo: 2 * c, normed + first * tokens * c, ldx: c,
                                rows: min(sequencesPerProduct, batch - first) * tokens, width: c, parts: 1..<3)
                }
                let bias = outputProjection.bias?.unsafeFloatPointer
                for b in 0..<batch {
                    let source = hidden + (b * tokens + row) * c, target = out + b * c
                    if let bias {
                        for i in 0..<c { target[i] = source[i] + bias[i] }
                    } else {
                        target.update(from: source, count: c)
                    }
                }
                for first in stride(from: 0, to: batch, by: skinnyMaxRows) {
                    let count = min(skinnyMaxRows, batch - first)
                    // Row `row` of each sequence: a stride of T rows.
                    qkv.project(queries + first * c, ldo: c, normed + (first * tokens + row) * c, ldx: tokens * c, rows: count,
                                width: c, parts: 0..<1)
                    batchedAttention(into: context + first * c, ldo: c, q: queries + first * c, ldq: c,
                                     k: keysValues + first * tokens * 2 * c, ldk: 2 * c,
                                     v: keysValues + first * tokens * 2 * c + c, ldv: 2 * c,
                                     batch: count, queryTokens: 1, keyTokens: tokens, heads: heads, headDim: c / heads) { _ in
                        causal ? SoftmaxMask(causalOffset: row) : .none
                    }
                    sgemm(transposeB: true, m: count, n: c, k: c, a: context + first * c, lda: c,
                          b: outputProjection.weight.unsafeFloatPointer, ldb: c, beta: 1, c: out + first * c, ldc: c)
                    feedForward(out + first * c, rows: count, normed: context + first * c, inner: wide + first * inner)
                }
            }
        }
    }

    /// The causal block over the nodes of a token tree that continues a cached
    /// prefix (the chain search's candidates): `hidden` `[N, C]` holds one row per
    /// node; every node's key and value are computed, the rest of the block for the
    /// nodes `queries` only, whose outputs go to `out` `[queries.count, C]` in that
    /// order. Queries run in blocks of `rowBlock` rows (bounding the MLP's scratch).
    /// With `keysValues` (`[N, 2C]`), also writes every node's key and value there.
    func forward(tree hidden: UnsafePointer<Float>, _ tree: TokenTree, queries: [Int32],
                 prefixKeys: UnsafePointer<Float>, prefixValues: UnsafePointer<Float>, prefixLength: Int,
                 rowBlock: Int, into out: UnsafeMutablePointer<Float>, keysValues keysValuesOut: UnsafeMutablePointer<Float>? = nil) {
        let nodes = tree.count, c = width, inner = fc1.outFeatures, headDim = c / heads
        let identity = queries.count == nodes && queries.enumerated().allSatisfy { Int($0.element) == $0.offset }
        withExtendedLifetime(self) {
            // [N, C] normalised input, [N, 2C] keys|values.
            Workspace.withScratch(nodes * 3 * c) { scratch in
                let normed = scratch, keysValues = scratch + nodes * c
                layerNorm(normed, hidden, weight: layerNorm1.weight.unsafeFloatPointer, bias: layerNorm1.bias.unsafeFloatPointer,
                          rows: nodes, cols: c, eps: layerNorm1.eps)
                qkv.project(keysValues, ldo: 2 * c, normed, ldx: c, rows: nodes, width: c, parts: 1..<3)
                keysValuesOut?.update(from: keysValues, count: nodes * 2 * c)
                for start in stride(from: 0, to: queries.count, by: rowBlock) {
                    let count = min(rowBlock, queries.count - start), output = out + start * c
                    // [count, C] queries, [count, C] context, [count, max(C, I)] gathered input / fc1.
                    Workspace.withScratch(count * (2 * c + max(c, inner))) { block in
                        let q = block, context = block + count * c, wide = context + count * c
                        if identity {
                            qkv.project(q, ldo: c, normed + start * c, ldx: c, rows: count, width: c, parts: 0..<1)
                        } else {
                            for i in 0..<count { (wide + i * c).update(from: normed + Int(queries[start + i]) * c, count: c) }
                            qkv.project(q, ldo: c, wide, ldx: c, rows: count, width: c, parts: 0..<1)
                        }
                        Workspace.withScratch(count * (prefixLength + tree.maxDepth + 1)) { scores in
                            queries.withUnsafeBufferPointer { queryNodes in
                                tree.parents.withUnsafeBufferPointer { parents in
                                    tree.depths.withUnsafeBufferPointer { depths in
                                        treeCausalAttention(
                                            context, ldo: c, q: q, ldq: c, queryNodes: queryNodes.baseAddress! + start,
                                            queryCount: count, kNodes: keysValues, ldk: 2 * c, vNodes: keysValues + c, ldv: 2 * c,
                                            kPrefix: prefixKeys, vPrefix: prefixValues, prefixLength: prefixLength,
                                            parents: parents.baseAddress!, depths: depths.baseAddress!, maxDepth: tree.maxDepth,
                                            heads: heads, headDim: headDim, scale: 1 / Float(headDim).squareRoot(), scratch: scores)
                                    }
                                }
                            }
                        }
                        let bias = outputProjection.bias?.unsafeFloatPointer
                        for i in 0..<count {
                            let source = hidden + Int(queries[start + i]) * c, target = output + i * c
                            if let bias {
                                for j in 0..<c { target[j] = source[j] + bias[j] }
                            } else {
                                target.update(from: source, count: c)
                            }
                        }
                        sgemm(transposeB: true, m: count, n: c, k: c, a: context, lda: c,
                              b: outputProjection.weight.unsafeFloatPointer, ldb: c, beta: 1, c: output, ldc: c)
                        feedForward(output, rows: count, normed: context, inner: wide)
                    }
                }
            }
        }
    }

    /// `hidden += fc2(act(fc1(ln2(hidden))))` for `rows` rows, with scratch
    /// `normed` (`[rows, C]`) and `inner` (`[rows, I]`).
    private func feedForward(_ hidden: UnsafeMutablePointer<Float>, rows: Int, normed: UnsafeMutablePointer<Float>,
                             inner: UnsafeMutablePointer<Float>, rowExact: Bool = false) {
        let c = width, i = fc1.outFeatures
        layerNormAddingBias(normed, ldy: c, hidden, ldx: c, addend: fc2.bias?.unsafeFloatPointer,
                            weight: layerNorm2.weight.unsafeFloatPointer, bias: layerNorm2.bias.unsafeFloatPointer,
                            rows: rows, cols: c, eps: layerNorm2.eps)
        sgemm(transposeB: true, m: rows, n: i, k: c, a: normed, lda: c, b: fc1.weight.unsafeFloatPointer, ldb: c,
              c: inner, ldc: i, rowExact: rowExact)
        addBiasAndActivate(inner, bias: fc1.bias?.unsafeFloatPointer, rows: rows, cols: i, activation)
        sgemm(transposeB: true, m: rows, n: c, k: i, a: inner, lda: i, b: fc2.weight.unsafeFloatPointer, ldb: i,
              beta: 1, c: hidden, ldc: c, rowExact: rowExact)
    }
}
