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
        // The layers take turns between two scratch buffers: a fresh [N, C] tensor per
        // layer is a new mapping each time (24 MB for a 2,048-candidate step), whose
        // pages the kernel faults in and zeroes again (42,000 page faults a step).
        let size = tree.count * width
        return try Workspace.withScratch(2 * size) { scratch in
            var (current, next) = (scratch, scratch + size)
            try tokenEmbedding.lookup(current, tree.tokens)
            for (n, depth) in tree.depths.enumerated() {
                addResidual(current + n * width, positionEmbedding.row(prefixLength + Int(depth)), count: width)
            }
            let everyNode = (0..<Int32(tree.count)).map { $0 }
            for (index, layer) in layers.dropLast().enumerated() {
                layer.forward(tree: current, tree, prefixKeys: prefix.keys[index], prefixValues: prefix.values[index],
                              queries: everyNode, into: next)
                swap(&current, &next)
            }
            return Tensor(shape: [outputs.count, width]) { out in
                guard let last = layers.last else {
                    for (i, node) in outputs.enumerated() { (out + i * width).update(from: current + Int(node) * width, count: width) }
                    return
                }
                last.forward(tree: current, tree, prefixKeys: prefix.keys[layers.count - 1],
                             prefixValues: prefix.values[layers.count - 1], queries: outputs, into: out)
            }
        }
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
        let queries = outputs ?? (0..<Int32(tree.count)).map { $0 }
        let input = x.asF32()
        return Tensor(shape: [queries.count, x.shape[1]]) { out in
            withExtendedLifetime(input) {
                forward(tree: input.unsafeFloatPointer, tree, prefixKeys: prefixKeys, prefixValues: prefixValues,
                        queries: queries, into: out)
            }
        }
    }

    /// ``callAsFunction(tree:_:prefixKeys:prefixValues:outputs:)`` on raw rows:
    /// `x` `[N, C]`, the rows of `queries` into `out` `[queries.count, C]`.
    func forward(tree x: UnsafePointer<Float>, _ tree: TokenTree, prefixKeys: Tensor, prefixValues: Tensor,
                 queries: [Int32], into out: UnsafeMutablePointer<Float>) {
        let keys = prefixKeys.asF32(), values = prefixValues.asF32()
        withExtendedLifetime((keys, values)) {
            block.forward(tree: x, tree, queries: queries, prefixKeys: keys.unsafeFloatPointer,
                          prefixValues: values.unsafeFloatPointer, prefixLength: keys.shape[0], rowBlock: Self.treeRowBlock,
                          into: out)
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
