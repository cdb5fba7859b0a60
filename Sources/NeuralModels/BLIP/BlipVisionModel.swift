// Port of transformers/models/blip/modeling_blip.py: BlipVisionEmbeddings,
// BlipAttention (fused qkv), BlipMLP, BlipEncoderLayer, BlipEncoder, BlipVisionModel.
import NeuralCore

/// BLIP's vision self-attention: one fused `qkv` projection (`[3C, C]`, output
/// columns `q | k | v`, heads contiguous inside each block) and `projection`.
public struct BlipAttention: Sendable {
    /// `qkv`, hidden → 3·hidden.
    public let qkv: Linear
    /// `projection`, hidden → hidden.
    public let projection: Linear
    /// The head count.
    public let heads: Int

    /// Loads `qkv` and `projection` from the scope (`…layers.i.self_attn`).
    public init(_ weights: WeightScope, _ config: BlipVisionConfig) throws {
        let c = config.hiddenSize
        qkv = try Linear(weights.scoped("qkv"), inFeatures: c, outFeatures: 3 * c)
        projection = try Linear(weights.scoped("projection"), inFeatures: c, outFeatures: c)
        heads = config.numAttentionHeads
    }

    /// Bidirectional self-attention over `x` `[B, T, C]`. Queries, keys and values
    /// are read in place from the fused `[B·T, 3C]` buffer through the leading
    /// dimension `3C` (no split copies).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        let fused = qkv(x) // [B, T, 3C]
        let context = batchedAttention(
            q: AttentionOperand(tensor: fused), k: AttentionOperand(tensor: fused, column: width),
            v: AttentionOperand(tensor: fused, column: 2 * width),
            batch: batch, queryTokens: tokens, keyTokens: tokens, heads: heads, width: width) { _ in .none }
        return projection(context)
    }
}

/// One pre-LayerNorm BLIP vision block:
/// `h = x + attn(ln1(x))`, `out = h + mlp(ln2(h))`.
public struct BlipEncoderLayer: Sendable {
    /// `layer_norm1`.
    public let layerNorm1: LayerNorm
    /// `self_attn`.
    public let selfAttention: BlipAttention
    /// `layer_norm2`.
    public let layerNorm2: LayerNorm
    /// `mlp`.
    public let mlp: MLP

    /// Loads the block from its scope (`vision_model.encoder.layers.i`).
    public init(_ weights: WeightScope, _ config: BlipVisionConfig) throws {
        layerNorm1 = try LayerNorm(weights.scoped("layer_norm1"), size: config.hiddenSize, eps: config.layerNormEps)
        selfAttention = try BlipAttention(weights.scoped("self_attn"), config)
        layerNorm2 = try LayerNorm(weights.scoped("layer_norm2"), size: config.hiddenSize, eps: config.layerNormEps)
        mlp = try MLP(weights.scoped("mlp"), hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
                      activation: config.hiddenAct)
    }

    /// Applies the block to `x` `[B, T, C]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var output = x.asF32()
        forward(inPlace: &output)
        return output
    }

    /// Applies the block to `hidden` `[B, T, C]` in place (the tower's layer loop
    /// allocates nothing).
    func forward(inPlace hidden: inout Tensor) {
        let (batch, tokens) = (hidden.shape[0], hidden.shape[1])
        let block = PreNormBlock(layerNorm1: layerNorm1, qkv: .fused(selfAttention.qkv),
                                 outputProjection: selfAttention.projection, layerNorm2: layerNorm2, fc1: mlp.fc1, fc2: mlp.fc2,
                                 activation: mlp.activation, heads: selfAttention.heads)
        hidden.withUnsafeMutableFloats { block.forward($0.baseAddress!, batch: batch, tokens: tokens, causal: false, batchExact: true) }
    }
}

/// BLIP's image encoder (`vision_model.*`): patch convolution with bias, class
/// token, learned positions, pre-LN encoder layers, and `post_layernorm` over every
/// token (its output is the `image_embeds` the caption decoder cross-attends to).
public struct BlipVisionModel: Sendable {
    /// The tower's config.
    public let config: BlipVisionConfig
    /// `embeddings.class_embedding` (`[1, 1, C]` in the file), `[C]`.
    public let classEmbedding: Tensor
    /// `embeddings.patch_embedding.weight` `[C, 3, P, P]` flattened to `[C, 3·P²]`.
    public let patchWeight: Tensor
    /// `embeddings.patch_embedding.bias`, `[C]`.
    public let patchBias: Tensor
    /// `embeddings.position_embedding` (`[1, T, C]` in the file), `[T, C]`.
    public let positionEmbedding: Tensor
    /// `encoder.layers.*`.
    public let layers: [BlipEncoderLayer]
    /// `post_layernorm`, applied to all tokens.
    public let postLayerNorm: LayerNorm

    /// Loads the tower from its scope (`vision_model`).
    public init(_ weights: WeightScope, _ config: BlipVisionConfig) throws {
        self.config = config
        let width = config.hiddenSize, p = config.patchSize, channels = config.numChannels
        classEmbedding = try weights.tensor("embeddings.class_embedding", shape: [1, 1, width]).reshaped([width])
        patchWeight = try weights.tensor("embeddings.patch_embedding.weight", shape: [width, channels, p, p])
            .reshaped([width, channels * p * p])
        patchBias = try weights.tensor("embeddings.patch_embedding.bias", shape: [width])
        positionEmbedding = try weights.tensor("embeddings.position_embedding", shape: [1, config.tokenCount, width])
            .reshaped([config.tokenCount, width])
        layers = try (0..<config.numHiddenLayers).map { try BlipEncoderLayer(weights.scoped("encoder.layers.\($0)"), config) }
        postLayerNorm = try LayerNorm(weights.scoped("post_layernorm"), size: width, eps: config.layerNormEps)
    }

    /// Class token + patch embeddings (conv with bias as im2col + GEMM) + positions
    /// for `pixels` `[B, 3, S, S]`: `[B, 1 + (S/P)², C]`.
    /// - Throws: ``ModelInputError/imageShape(found:expected:)``.
    public func embeddings(_ pixels: Tensor) throws -> Tensor {
        try patchTokens(pixels, channels: config.numChannels, imageSize: config.imageSize, patchSize: config.patchSize,
                        classEmbedding: classEmbedding, patchWeight: patchWeight, patchBias: patchBias,
                        positions: positionEmbedding)
    }

    /// Runs the tower on `pixels` `[B, 3, S, S]`.
    ///
    /// Returns `imageEmbeds` `[B, T, C]` (transformers' `last_hidden_state`:
    /// `post_layernorm` of the last layer's output, every token) and, with
    /// `allHiddenStates`, transformers' `hidden_states`: the embeddings, then each
    /// layer's output (before `post_layernorm`).
    /// - Throws: ``ModelInputError/imageShape(found:expected:)``.
    public func encode(_ pixels: Tensor, allHiddenStates: Bool = false) throws -> (imageEmbeds: Tensor, hiddenStates: [Tensor]) {
        var hidden = try embeddings(pixels)
        var all = allHiddenStates ? [hidden] : []
        for layer in layers {
            layer.forward(inPlace: &hidden)
            if allHiddenStates { all.append(hidden) }
        }
        let rows = hidden.count / config.hiddenSize
        hidden.withUnsafeMutableFloats { postLayerNorm.forward($0.baseAddress!, $0.baseAddress!, rows: rows) }
        return (hidden, all)
    }
}
