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
            return withExtendedLifetime(prefix) {
                func run(_ index: Int, queries: [Int32], into out: UnsafeMutablePointer<Float>) {
                    layers[index].forward(tree: current, tree, prefixKeys: prefix.keys[index].unsafeFloatPointer,
                                          prefixValues: prefix.values[index].unsafeFloatPointer, prefixLength: prefixLength,
                                          queries: queries, into: out)
                }
                for index in layers.indices.dropLast() {
                    run(index, queries: everyNode, into: next)
                    swap(&current, &next)
                }
                return Tensor(shape: [outputs.count, width]) { out in
                    guard !layers.isEmpty else {
                        for (i, node) in outputs.enumerated() { (out + i * width).update(from: current + Int(node) * width, count: width) }
                        return
                    }
                    run(layers.count - 1, queries: outputs, into: out)
                }
            }
        }
    }

    /// Prefix rows computed together by ``prefixCache(_:extending:)``: the prefix is
    /// run in blocks of this many positions, `[0, 12)`, `[12, 24)`, …, each against
    /// the keys and values of the blocks before it.
    static let prefixBlock = 12

    /// Runs `tokens` (a prompt's ids without its end token) and keeps every
    /// layer's attention keys and values, so that many continuations of it can be
    /// encoded without recomputing it (``encode(tree:after:outputs:)``).
    ///
    /// The prefix runs in fixed blocks of 12 positions, so the cache
    /// of a longer prompt can start from a shorter one's: with `base`, the whole
    /// blocks that `tokens` shares with `base.tokens` are taken from it, and the
    /// result equals computing `tokens` alone, bit for bit (a block's rows are the
    /// same product either way). The chain search's prompt grows by a phrase a step.
    /// A `base` of another shape (another model's) is not used.
    /// - Throws: ``ModelInputError`` for unknown ids or prefixes beyond the context.
    public func prefixCache(_ tokens: [Int], extending base: CLIPTextPrefixCache? = nil) throws -> CLIPTextPrefixCache {
        try prefixCacheAndWork(tokens, extending: base).cache
    }

    /// ``prefixCache(_:extending:)`` and how many of the tokens ran through the
    /// tower (the rest came from `base`).
    func prefixCacheAndWork(_ tokens: [Int], extending base: CLIPTextPrefixCache?) throws
        -> (cache: CLIPTextPrefixCache, encoded: Int) {
        let width = config.encoder.hiddenSize, block = Self.prefixBlock
        guard tokens.count <= config.maxPositionEmbeddings else {
            throw ModelInputError.sequenceTooLong(length: tokens.count, maximum: config.maxPositionEmbeddings)
        }
        var kept = 0
        let shape = [tokens.count, width]
        if let base, base.keys.count == layers.count, base.values.count == layers.count,
           (base.keys + base.values).allSatisfy({ $0.shape == [base.tokens.count, width] }) {
            kept = zip(base.tokens, tokens).prefix { $0 == $1 }.count / block * block
        }
        var keys = layers.indices.map { Array(base?.keys[$0].floats().prefix(kept * width) ?? []) }
        var values = layers.indices.map { Array(base?.values[$0].floats().prefix(kept * width) ?? []) }
        for start in stride(from: kept, to: tokens.count, by: block) {
            let ids = Array(tokens[start..<min(start + block, tokens.count)]), rows = ids.count
            let chain = TokenTree([ids]), everyRow = (0..<Int32(rows)).map { $0 }
            let embedded = try embeddings([ids], positionOffset: start)
            Workspace.withScratch(rows * 4 * width) { scratch in
                var (current, next) = (scratch, scratch + rows * width)
                let keysValues = scratch + 2 * rows * width
                current.update(from: embedded.unsafeFloatPointer, count: rows * width)
                for (index, layer) in layers.enumerated() {
                    // The last layer's output is not needed, only its keys and values.
                    let queries = index == layers.count - 1 ? [] : everyRow
                    keys[index].withUnsafeBufferPointer { k in
                        values[index].withUnsafeBufferPointer { v in
                            layer.forward(tree: current, chain, prefixKeys: k.baseAddress ?? UnsafePointer(current),
                                          prefixValues: v.baseAddress ?? UnsafePointer(current), prefixLength: start, queries: queries,
                                          into: next, keysValues: keysValues)
                        }
                    }
                    for row in 0..<rows {
                        keys[index].append(contentsOf: UnsafeBufferPointer(start: keysValues + row * 2 * width, count: width))
                        values[index].append(contentsOf: UnsafeBufferPointer(start: keysValues + row * 2 * width + width, count: width))
                    }
                    swap(&current, &next)
                }
            }
        }
        let cache = CLIPTextPrefixCache(tokens: tokens, keys: keys.map { Tensor(shape: shape, scalars: $0) },
                                        values: values.map { Tensor(shape: shape, scalars: $0) })
        return (cache, tokens.count - kept)
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
        let input = x.asF32(), keys = prefixKeys.asF32(), values = prefixValues.asF32()
        return Tensor(shape: [queries.count, x.shape[1]]) { out in
            withExtendedLifetime((input, keys, values)) {
                forward(tree: input.unsafeFloatPointer, tree, prefixKeys: keys.unsafeFloatPointer,
                        prefixValues: values.unsafeFloatPointer, prefixLength: keys.shape[0], queries: queries, into: out)
            }
        }
    }

    /// ``callAsFunction(tree:_:prefixKeys:prefixValues:outputs:)`` on raw rows:
    /// `x` `[N, C]` after a prefix of `prefixLength` keys and values `[P, C]`, the
    /// rows of `queries` into `out` `[queries.count, C]`; with `keysValues`
    /// (`[N, 2C]`), also every node's key and value.
    func forward(tree x: UnsafePointer<Float>, _ tree: TokenTree, prefixKeys: UnsafePointer<Float>,
                 prefixValues: UnsafePointer<Float>, prefixLength: Int, queries: [Int32],
                 into out: UnsafeMutablePointer<Float>, keysValues: UnsafeMutablePointer<Float>? = nil) {
        block.forward(tree: x, tree, queries: queries, prefixKeys: prefixKeys, prefixValues: prefixValues,
                      prefixLength: prefixLength, rowBlock: Self.treeRowBlock, into: out, keysValues: keysValues)
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
