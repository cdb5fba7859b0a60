// Port of transformers/models/clip/modeling_clip.py: CLIPTextEmbeddings,
// CLIPTextTransformer (causal pre-LN encoder, final LayerNorm, end-token pooling).
import NeuralCore

/// CLIP's text tower (`text_model.*`).
public struct CLIPTextTransformer: Sendable {
    /// The tower's config.
    public let config: CLIPTextConfig
    /// `embeddings.token_embedding`.
    public let tokenEmbedding: Embedding
    /// `embeddings.position_embedding`.
    public let positionEmbedding: Embedding
    /// `encoder.layers.*`.
    public let layers: [CLIPEncoderLayer]
    /// `final_layer_norm`.
    public let finalLayerNorm: LayerNorm

    /// Loads the tower from its scope (`text_model`).
    public init(_ weights: WeightScope, _ config: CLIPTextConfig) throws {
        self.config = config
        let width = config.encoder.hiddenSize
        tokenEmbedding = try Embedding(weights.scoped("embeddings.token_embedding"), count: config.vocabSize, dimension: width)
        positionEmbedding = try Embedding(weights.scoped("embeddings.position_embedding"),
                                          count: config.maxPositionEmbeddings, dimension: width)
        layers = try (0..<config.encoder.numHiddenLayers).map {
            try CLIPEncoderLayer(weights.scoped("encoder.layers.\($0)"), config.encoder)
        }
        finalLayerNorm = try LayerNorm(weights.scoped("final_layer_norm"), size: width, eps: config.encoder.layerNormEps)
    }

    /// Token plus position embeddings for a batch of equal-length sequences whose
    /// first token sits at `positionOffset`: `[B, T, C]`.
    /// - Throws: ``ModelInputError`` for unknown ids or sequences beyond the context.
    public func embeddings(_ ids: [[Int]], positionOffset: Int = 0) throws -> Tensor {
        let tokens = ids.first?.count ?? 0
        precondition(ids.allSatisfy { $0.count == tokens }, "embeddings(_:) takes equal-length sequences")
        guard positionOffset + tokens <= config.maxPositionEmbeddings else {
            throw ModelInputError.sequenceTooLong(length: positionOffset + tokens, maximum: config.maxPositionEmbeddings)
        }
        let width = config.encoder.hiddenSize
        return try Tensor(shape: [ids.count, tokens, width]) { out in
            for (b, sequence) in ids.enumerated() {
                let rows = out + b * tokens * width
                try tokenEmbedding.lookup(rows, sequence)
                for t in 0..<tokens { addResidual(rows + t * width, positionEmbedding.row(positionOffset + t), count: width) }
            }
        }
    }

    /// Runs the encoder over equal-length sequences and returns the last layer's
    /// output `[B, T, C]` (before `final_layer_norm`). With `allHiddenStates`, also
    /// the input to every layer and the last output (transformers' `hidden_states`).
    public func encode(_ ids: [[Int]], allHiddenStates: Bool = false) throws -> (last: Tensor, all: [Tensor]) {
        var hidden = try embeddings(ids)
        var all: [Tensor] = []
        for layer in layers {
            if allHiddenStates { all.append(hidden) }
            layer.forward(inPlace: &hidden, causal: true, batchExact: false)
        }
        if allHiddenStates { all.append(hidden) }
        return (hidden, all)
    }

    /// The last layer's output at each sequence's last token, `[B, C]` (before
    /// `final_layer_norm`), for equal-length sequences: rows `T − 1` of
    /// ``encode(_:allHiddenStates:)``'s output, with the last layer computed only
    /// for them (the tower is causal, so nothing after them matters).
    /// - Throws: ``ModelInputError`` for unknown ids, empty sequences or sequences
    ///   beyond the context.
    public func encodeLastToken(_ ids: [[Int]]) throws -> Tensor {
        let tokens = ids.first?.count ?? 0
        guard tokens > 0 else { throw ModelInputError.emptySequence }
        var hidden = try embeddings(ids)
        guard let last = layers.last else { return hidden.gatheringRows(ids.indices.map { Int32($0 * tokens + tokens - 1) }) }
        for layer in layers.dropLast() { layer.forward(inPlace: &hidden, causal: true, batchExact: false) }
        return last.forward(pooling: tokens - 1, of: hidden, causal: true, batchExact: false)
    }
}

/// The per-layer attention keys and values of a token prefix (see
/// ``CLIPTextTransformer/prefixCache(_:extending:)``).
public struct CLIPTextPrefixCache: Sendable {
    /// The prefix's token ids.
    public let tokens: [Int]
    /// Keys per layer, `[P, C]` each.
    public let keys: [Tensor]
    /// Values per layer, `[P, C]` each.
    public let values: [Tensor]
}
