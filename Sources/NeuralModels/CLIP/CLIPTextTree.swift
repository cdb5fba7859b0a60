// The CLIP text tower over a token tree that continues a cached prefix: the
// chain search's candidates ("current prompt, phrase") share the prompt and often
// their first tokens, so each distinct token path is computed once.
import NeuralCore

extension CLIPTextTransformer {
    /// Encodes the nodes of `tree`, which continue the cached `prefix`: node `n`
    /// sits at position `P + depth(n)`. Returns the last layer's output
    /// (before `final_layer_norm`) for the nodes `outputs`, `[outputs.count, C]`;
    /// each row equals the row at that position of encoding `prefix + path(n)` in
    /// full. The last layer runs only for the `outputs` rows.
    /// - Throws: ``ModelInputError`` for unknown ids or paths past the context.
    public func encode(tree: TokenTree, after prefix: CLIPTextPrefixCache, outputs: [Int32]) throws -> Tensor {
        let width = config.encoder.hiddenSize, prefixLength = prefix.tokens.count
        guard prefixLength + tree.maxDepth + 1 <= config.maxPositionEmbeddings else {
            throw ModelInputError.sequenceTooLong(length: prefixLength + tree.maxDepth + 1, maximum: config.maxPositionEmbeddings)
        }
        var hidden = try Tensor(shape: [tree.count, width]) { out in
            try tokenEmbedding.lookup(out, tree.tokens)
            for (n, depth) in tree.depths.enumerated() {
                addResidual(out + n * width, positionEmbedding.row(prefixLength + Int(depth)), count: width)
            }
        }
        guard !layers.isEmpty else { return hidden.gatheringRows(outputs) }
        for (index, layer) in layers.enumerated() {
            hidden = layer(tree: hidden, tree, prefixKeys: prefix.keys[index], prefixValues: prefix.values[index],
                           outputs: index == layers.count - 1 ? outputs : nil)
        }
        return hidden
    }
}

extension CLIPEncoderLayer {
    /// Query rows a tree block computes at once (bounds the MLP's intermediate
    /// activations to this many rows).
    static let treeRowBlock = 4096

    /// Applies the causal block to the nodes of `tree` (`x` `[N, C]`, one row per
    /// node), which continue a prefix whose keys and values at this layer are
    /// `prefixKeys`/`prefixValues` `[P, C]`. Every node's key and value is
    /// computed; the rest of the block only for the nodes `outputs` (all nodes
    /// when nil). Returns `[outputs.count, C]` (`[N, C]` when nil).
    public func callAsFunction(tree x: Tensor, _ tree: TokenTree, prefixKeys: Tensor, prefixValues: Tensor,
                               outputs: [Int32]?) -> Tensor {
        let width = x.shape[1]
        let queries = outputs ?? (0..<Int32(tree.count)).map { $0 }
        let input = x.asF32(), keys = prefixKeys.asF32(), values = prefixValues.asF32()
        return Tensor(shape: [queries.count, width]) { out in
            withExtendedLifetime((input, keys, values)) {
                block.forward(tree: input.unsafeFloatPointer, tree, queries: queries, prefixKeys: keys.unsafeFloatPointer,
                              prefixValues: values.unsafeFloatPointer, prefixLength: keys.shape[0], rowBlock: Self.treeRowBlock,
                              into: out)
            }
        }
    }
}

extension Tensor {
    /// Rows `rows` of this tensor seen as `[N, C]` rows of its last dimension, in
    /// that order: `[rows.count, C]` (F32).
    func gatheringRows(_ rows: [Int32]) -> Tensor {
        let width = shape.last ?? 0
        let source = asF32()
        return Tensor(shape: [rows.count, width]) { out in
            withExtendedLifetime(source) {
                for (i, row) in rows.enumerated() {
                    (out + i * width).update(from: source.unsafeFloatPointer + Int(row) * width, count: width)
                }
            }
        }
    }

    /// Columns `columns` of this tensor seen as `[N, W]` rows of its last
    /// dimension, reshaped to `shape`.
    func gatheringColumns(_ columns: Range<Int>, shape newShape: [Int]) -> Tensor {
        let width = shape.last ?? 0, rows = count / max(width, 1)
        let source = asF32()
        return Tensor(shape: newShape) { out in
            withExtendedLifetime(source) {
                for r in 0..<rows {
                    (out + r * columns.count).update(from: source.unsafeFloatPointer + r * width + columns.lowerBound, count: columns.count)
                }
            }
        }
    }
}
