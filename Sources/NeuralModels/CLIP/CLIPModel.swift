// Port of transformers/models/clip/modeling_clip.py: CLIPModel (get_text_features,
// get_image_features and the normalised embeddings the interrogator compares).
import Foundation
import NeuralCore

/// A CLIP model loaded from a Hugging Face `CLIPModel` checkpoint, driven by its
/// `config.json` (ViT-B/32 through ViT-bigG/14, QuickGELU or GELU).
///
/// Loading is strict: every tensor in the checkpoint is used, except the
/// `position_ids` buffers; a missing, extra or mis-shaped tensor fails with its
/// full key. F16/BF16 checkpoints are widened to F32 at load (the GEMMs run in
/// F32), so they take twice their file size in memory; F32 checkpoints stay in
/// the memory-mapped file.
public final class CLIPModel: Sendable {
    /// The decoded `config.json`.
    public let configuration: CLIPConfiguration
    /// `text_model`.
    public let textModel: CLIPTextTransformer
    /// `vision_model`.
    public let visionModel: CLIPVisionTransformer
    /// `text_projection` (no bias).
    public let textProjection: Linear
    /// `visual_projection` (no bias).
    public let visualProjection: Linear
    /// `logit_scale` (the log of the similarity temperature).
    public let logitScale: Float

    /// Loads the checkpoint in `directory` (`config.json` + `model.safetensors` or shards).
    public convenience init(directory: URL) throws {
        try self.init(checkpoint: Checkpoint(directory: directory))
    }

    /// Loads a CLIP model from an opened checkpoint.
    public convenience init(checkpoint: Checkpoint) throws {
        try self.init(configuration: checkpoint.json(CLIPConfiguration.self), weights: checkpoint.weights)
    }

    /// Builds the model described by `configuration` from `weights` (a checkpoint,
    /// or a synthetic store for benchmarks), strictly: every tensor but the
    /// `position_ids` buffers must be used.
    public init(configuration: CLIPConfiguration, weights: WeightStore) throws {
        self.configuration = configuration
        let root = WeightScope(weights)
        textModel = try CLIPTextTransformer(root.scoped("text_model"), configuration.textConfig)
        visionModel = try CLIPVisionTransformer(root.scoped("vision_model"), configuration.visionConfig)
        textProjection = try Linear(root.scoped("text_projection"), inFeatures: configuration.textConfig.encoder.hiddenSize,
                                    outFeatures: configuration.projectionDim, bias: false)
        visualProjection = try Linear(root.scoped("visual_projection"), inFeatures: configuration.visionConfig.encoder.hiddenSize,
                                      outFeatures: configuration.projectionDim, bias: false)
        logitScale = try root.tensor("logit_scale", shape: []).floats()[0]
        weights.markConsumed { $0.hasSuffix(".position_ids") }
        try weights.verifyAllConsumed()
    }

    /// The embedding width both towers project to.
    public var embeddingDimension: Int { configuration.projectionDim }

    // MARK: Images

    /// `get_image_features`: projected, unnormalised image features `[B, D]` for
    /// preprocessed `pixels` `[B, 3, S, S]`.
    ///
    /// The last layer's class-token rows and the projection run in groups of at
    /// most `skinnyMaxRows` rows, so they add no dependence on the batch size.
    public func imageFeatures(_ pixels: Tensor) throws -> Tensor {
        visualProjection(rowIndependent: try visionModel.pooledOutput(pixels))
    }

    /// L2-normalised image embeddings `[B, D]`.
    public func imageEmbeddings(_ pixels: Tensor) throws -> Tensor {
        normalizedRows(try imageFeatures(pixels))
    }

    // MARK: Texts

    /// The largest number of token rows (sequences × length) run through the text
    /// tower at once when encoding many texts.
    public static let textBatchRows = 4096

    /// `get_text_features`: projected, unnormalised features `[N, D]` for
    /// tokenised texts (each `[start, …, end]`, padded or not).
    ///
    /// The tower is causal, so tokens after the pooled end token cannot change the
    /// result: each text is encoded only up to it (its true length), and texts of
    /// equal length are batched together, so no padding is ever computed.
    /// - Throws: ``ModelInputError`` for unknown ids or overlong texts.
    public func textFeatures(_ ids: [[Int]]) throws -> Tensor {
        let truncated = ids.map(truncatedAtPooledToken)
        let pooled = try Tensor(shape: [ids.count, configuration.textConfig.encoder.hiddenSize]) { rows in
            try poolFullLength(truncated, indices: Array(truncated.indices), into: rows)
        }
        return textProjection(rowIndependent: textModel.finalLayerNorm(pooled))
    }

    /// ``textFeatures(_:)`` for many texts that continue one cached prefix (the
    /// chain search's "current prompt, candidate"); see
    /// ``textFeaturesAndCost(_:continuing:)``.
    public func textFeatures(_ ids: [[Int]], continuing prefix: CLIPTextPrefixCache) throws -> Tensor {
        try textFeaturesAndCost(ids, continuing: prefix).features
    }

    /// ``textFeatures(_:)`` for many texts that continue one cached prefix, and
    /// what it cost. The texts whose tokens start with the prefix's are encoded as
    /// one token tree over the cached keys and values (``TokenTree``): tokens that
    /// several texts share after the prefix (the ", " every chain candidate starts
    /// with, "by", "trending on", …) are computed once, and the last layer runs
    /// only at the pooled tokens. The others (where tokenisation merged across the
    /// boundary, or truncation cut into the prefix) are encoded in full. Results
    /// equal ``textFeatures(_:)`` up to float rounding.
    public func textFeaturesAndCost(_ ids: [[Int]], continuing prefix: CLIPTextPrefixCache) throws
        -> (features: Tensor, cost: TextEncodingCost) {
        let width = configuration.textConfig.encoder.hiddenSize
        let prefixLength = prefix.tokens.count
        let truncated = ids.map(truncatedAtPooledToken)
        var continuing: [Int] = [], full: [Int] = []
        for (index, sequence) in truncated.enumerated() {
            if sequence.count > prefixLength && sequence.starts(with: prefix.tokens) { continuing.append(index) } else { full.append(index) }
        }
        let tree = TokenTree(continuing.map { Array(truncated[$0][prefixLength...]) })
        // Each distinct end node once, in node order.
        let outputs = Array(Set(tree.ends)).sorted().map { Int32($0) }
        let outputRow = Dictionary(uniqueKeysWithValues: outputs.enumerated().map { (Int($0.element), $0.offset) })
        let pooled = try Tensor(shape: [ids.count, width]) { rows in
            try poolFullLength(truncated, indices: full, into: rows)
            guard !continuing.isEmpty else { return }
            let last = try textModel.encode(tree: tree, after: prefix, outputs: outputs)
            for (i, index) in continuing.enumerated() {
                (rows + index * width).update(from: last.unsafeFloatPointer + outputRow[tree.ends[i]]! * width, count: width)
            }
        }
        let cost = TextEncodingCost(texts: ids.count, tokens: truncated.reduce(0) { $0 + $1.count },
                                    tokensEncoded: prefixLength + tree.count + full.reduce(0) { $0 + truncated[$1].count })
        return (textProjection(rowIndependent: textModel.finalLayerNorm(pooled)), cost)
    }

    /// The ids up to and including the token transformers pools at.
    private func truncatedAtPooledToken(_ ids: [Int]) -> [Int] {
        Array(ids.prefix(configuration.textConfig.pooledIndex(of: ids) + 1))
    }

    /// Encodes `sequences[i]` for each `i` in `indices`, grouped by length into
    /// batches, and writes each one's last-token state to row `i` of `rows`.
    private func poolFullLength(_ sequences: [[Int]], indices: [Int], into rows: UnsafeMutablePointer<Float>) throws {
        let width = configuration.textConfig.encoder.hiddenSize
        var byLength: [Int: [Int]] = [:]
        for index in indices {
            guard !sequences[index].isEmpty else { throw ModelInputError.emptySequence }
            byLength[sequences[index].count, default: []].append(index)
        }
        for (length, members) in byLength.sorted(by: { $0.key < $1.key }) {
            let perBatch = max(1, Self.textBatchRows / max(length, 1))
            for start in stride(from: 0, to: members.count, by: perBatch) {
                let group = Array(members[start..<min(start + perBatch, members.count)])
                let last = try textModel.encodeLastToken(group.map { sequences[$0] })
                for (row, index) in group.enumerated() {
                    (rows + index * width).update(from: last.unsafeFloatPointer + row * width, count: width)
                }
            }
        }
    }

    /// L2-normalised text embeddings `[N, D]` (see ``textFeatures(_:)``).
    public func textEmbeddings(_ ids: [[Int]]) throws -> Tensor {
        normalizedRows(try textFeatures(ids))
    }
}

/// `x / ‖x‖` along the last dimension.
public func normalizedRows(_ x: Tensor) -> Tensor {
    var y = x.asF32()
    let cols = x.shape.last ?? 1
    y.withUnsafeMutableFloats { l2NormalizeRows($0.baseAddress!, rows: $0.count / max(cols, 1), cols: cols) }
    return y
}
