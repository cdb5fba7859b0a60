// Port of transformers/models/clip/modeling_clip.py: CLIPVisionEmbeddings,
// CLIPVisionTransformer (patch conv without bias, class token, pre/post LayerNorm).
import NeuralCore

/// CLIP's vision tower (`vision_model.*`).
public struct CLIPVisionTransformer: Sendable {
    /// The tower's config.
    public let config: CLIPVisionConfig
    /// `embeddings.class_embedding`, `[C]`.
    public let classEmbedding: Tensor
    /// `embeddings.patch_embedding.weight` flattened to `[C, channels·P²]`.
    public let patchWeight: Tensor
    /// `embeddings.position_embedding`, one row per token.
    public let positionEmbedding: Embedding
    /// `pre_layrnorm` (sic).
    public let preLayerNorm: LayerNorm
    /// `encoder.layers.*`.
    public let layers: [CLIPEncoderLayer]
    /// `post_layernorm`, applied to the class token.
    public let postLayerNorm: LayerNorm

    /// Loads the tower from its scope (`vision_model`).
    public init(_ weights: WeightScope, _ config: CLIPVisionConfig) throws {
        self.config = config
        let width = config.encoder.hiddenSize, p = config.patchSize, eps = config.encoder.layerNormEps
        classEmbedding = try weights.tensor("embeddings.class_embedding", shape: [width])
        patchWeight = try weights.tensor("embeddings.patch_embedding.weight", shape: [width, config.numChannels, p, p])
            .reshaped([width, config.numChannels * p * p])
        positionEmbedding = try Embedding(weights.scoped("embeddings.position_embedding"), count: config.tokenCount, dimension: width)
        preLayerNorm = try LayerNorm(weights.scoped("pre_layrnorm"), size: width, eps: eps)
        layers = try (0..<config.encoder.numHiddenLayers).map {
            try CLIPEncoderLayer(weights.scoped("encoder.layers.\($0)"), config.encoder)
        }
        postLayerNorm = try LayerNorm(weights.scoped("post_layernorm"), size: width, eps: eps)
    }

    /// Class token + patch embeddings + positions for `pixels` `[B, channels, S, S]`:
    /// `[B, 1 + (S/P)², C]`.
    /// - Throws: ``ModelInputError/imageShape(found:expected:)``.
    public func embeddings(_ pixels: Tensor) throws -> Tensor {
        try patchTokens(pixels, channels: config.numChannels, imageSize: config.imageSize, patchSize: config.patchSize,
                        classEmbedding: classEmbedding, patchWeight: patchWeight, patchBias: nil,
                        positions: positionEmbedding.weight)
    }

    /// Runs the tower and returns the encoder's output `[B, T, C]` (transformers'
    /// `last_hidden_state`, before `post_layernorm`). With `allHiddenStates`, also
    /// every layer's input (the first is the pre-LayerNorm'd embeddings) and the
    /// last output.
    public func encode(_ pixels: Tensor, allHiddenStates: Bool = false) throws -> (last: Tensor, all: [Tensor]) {
        var hidden = try normalizedEmbeddings(pixels)
        var all: [Tensor] = []
        for layer in layers {
            if allHiddenStates { all.append(hidden) }
            layer.forward(inPlace: &hidden, causal: false, batchExact: true)
        }
        if allHiddenStates { all.append(hidden) }
        return (hidden, all)
    }

    /// The pooler output for `pixels` `[B, channels, S, S]`: `post_layernorm` of
    /// each image's class token after the last layer, `[B, C]` — what
    /// ``pooled(_:)`` of ``encode(_:allHiddenStates:)`` gives, with the last layer
    /// computed only for the class tokens (keys and values still for every token).
    /// - Throws: ``ModelInputError/imageShape(found:expected:)``.
    public func pooledOutput(_ pixels: Tensor) throws -> Tensor {
        var hidden = try normalizedEmbeddings(pixels)
        guard let last = layers.last else { return pooled(hidden) }
        for layer in layers.dropLast() { layer.forward(inPlace: &hidden, causal: false, batchExact: true) }
        return postLayerNorm(last.forward(pooling: 0, of: hidden, causal: false, batchExact: true))
    }

    /// `pre_layrnorm` of the embeddings, in place.
    private func normalizedEmbeddings(_ pixels: Tensor) throws -> Tensor {
        var hidden = try embeddings(pixels)
        let rows = hidden.count / config.encoder.hiddenSize
        hidden.withUnsafeMutableFloats { preLayerNorm.forward($0.baseAddress!, $0.baseAddress!, rows: rows) }
        return hidden
    }

    /// `post_layernorm` of each image's class token: `[B, C]` (the pooler output).
    public func pooled(_ last: Tensor) -> Tensor {
        let (batch, tokens) = (last.shape[0], last.shape[1])
        return postLayerNorm(last.gatheringRows((0..<batch).map { Int32($0 * tokens) }))
    }
}
