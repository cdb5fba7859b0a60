// Port of transformers/models/clip/modeling_clip.py: CLIPAttention, CLIPMLP,
// CLIPEncoderLayer (pre-LayerNorm transformer block shared by both towers).
import NeuralCore

/// The encoder hyper-parameters shared by CLIP's text and vision configs
/// (`text_config` / `vision_config` in `config.json`), with Hugging Face's defaults.
public struct CLIPEncoderConfig: Codable, Sendable, Equatable {
    /// Residual stream width (`hidden_size`).
    public var hiddenSize: Int
    /// MLP width (`intermediate_size`).
    public var intermediateSize: Int
    /// Number of encoder layers (`num_hidden_layers`).
    public var numHiddenLayers: Int
    /// Attention heads (`num_attention_heads`).
    public var numAttentionHeads: Int
    /// The MLP activation (`hidden_act`), QuickGELU for OpenAI checkpoints.
    public var hiddenAct: Activation
    /// LayerNorm epsilon (`layer_norm_eps`).
    public var layerNormEps: Float

    /// Creates a config from explicit values.
    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                hiddenAct: Activation = .quickGELU, layerNormEps: Float = 1e-5) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    /// Hugging Face's `CLIPTextConfig` encoder defaults: 512 wide, 2048 MLP, 12
    /// layers, 8 heads, QuickGELU.
    public static let textDefaults = CLIPEncoderConfig(hiddenSize: 512, intermediateSize: 2048, numHiddenLayers: 12, numAttentionHeads: 8)
    /// Hugging Face's `CLIPVisionConfig` encoder defaults: 768 wide, 3072 MLP, 12
    /// layers, 12 heads, QuickGELU.
    public static let visionDefaults = CLIPEncoderConfig(hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12, numAttentionHeads: 12)

    /// Decodes from a Hugging Face config object; absent keys take ``textDefaults``.
    public init(from decoder: any Decoder) throws {
        try self.init(from: decoder, defaults: .textDefaults)
    }

    /// Decodes from a Hugging Face config object; absent keys take `defaults`.
    public init(from decoder: any Decoder, defaults: CLIPEncoderConfig) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.size(.hiddenSize, default: defaults.hiddenSize, in: ConfigLimits.width)
        intermediateSize = try c.size(.intermediateSize, default: defaults.intermediateSize, in: ConfigLimits.width)
        numHiddenLayers = try c.size(.numHiddenLayers, default: defaults.numHiddenLayers, in: ConfigLimits.layers)
        numAttentionHeads = try c.size(.numAttentionHeads, default: defaults.numAttentionHeads, in: ConfigLimits.heads)
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) {
            guard let activation = Activation(huggingFaceName: act) else {
                throw DecodingError.dataCorruptedError(forKey: .hiddenAct, in: c, debugDescription: "unsupported hidden_act '\(act)'")
            }
            hiddenAct = activation
        } else {
            hiddenAct = defaults.hiddenAct
        }
        layerNormEps = try c.epsilon(.layerNormEps, default: defaults.layerNormEps)
        guard hiddenSize % numAttentionHeads == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c,
                debugDescription: "hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
    }

    /// The width of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// CLIP's multi-head self-attention (`q_proj`, `k_proj`, `v_proj`, `out_proj`).
public struct CLIPAttention: Sendable {
    /// Query projection (`q_proj`).
    public let queryProjection: Linear
    /// Key projection (`k_proj`).
    public let keyProjection: Linear
    /// Value projection (`v_proj`).
    public let valueProjection: Linear
    /// Output projection (`out_proj`).
    public let outputProjection: Linear
    /// The head count.
    public let heads: Int

    /// Loads the four projections of `config.hiddenSize` width.
    public init(_ weights: WeightScope, _ config: CLIPEncoderConfig) throws {
        let c = config.hiddenSize
        queryProjection = try Linear(weights.scoped("q_proj"), inFeatures: c, outFeatures: c)
        keyProjection = try Linear(weights.scoped("k_proj"), inFeatures: c, outFeatures: c)
        valueProjection = try Linear(weights.scoped("v_proj"), inFeatures: c, outFeatures: c)
        outputProjection = try Linear(weights.scoped("out_proj"), inFeatures: c, outFeatures: c)
        heads = config.numAttentionHeads
    }

    /// Self-attention over `x` `[B, T, C]`, causal when `causal` (the text tower).
    public func callAsFunction(_ x: Tensor, causal: Bool) -> Tensor {
        forward(x, causal: causal).output
    }

    /// Self-attention that also returns the keys and values it computed
    /// (`[B, T, C]` each), for a prefix cache.
    public func forward(_ x: Tensor, causal: Bool) -> (output: Tensor, keys: Tensor, values: Tensor) {
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        let q = queryProjection(x), k = keyProjection(x), v = valueProjection(x)
        let context = batchedAttention(
            q: AttentionOperand(tensor: q), k: AttentionOperand(tensor: k), v: AttentionOperand(tensor: v),
            batch: batch, queryTokens: tokens, keyTokens: tokens, heads: heads, width: width) { _ in
            causal ? SoftmaxMask(causalOffset: 0) : .none
        }
        return (outputProjection(context), k, v)
    }
}

/// One pre-LayerNorm CLIP encoder block:
/// `h = x + attn(ln1(x))`, `out = h + mlp(ln2(h))`.
public struct CLIPEncoderLayer: Sendable {
    /// `layer_norm1`.
    public let layerNorm1: LayerNorm
    /// `self_attn`.
    public let selfAttention: CLIPAttention
    /// `layer_norm2`.
    public let layerNorm2: LayerNorm
    /// `mlp`.
    public let mlp: MLP

    /// Loads the block from its scope (e.g. `text_model.encoder.layers.3`).
    public init(_ weights: WeightScope, _ config: CLIPEncoderConfig) throws {
        layerNorm1 = try LayerNorm(weights.scoped("layer_norm1"), size: config.hiddenSize, eps: config.layerNormEps)
        selfAttention = try CLIPAttention(weights.scoped("self_attn"), config)
        layerNorm2 = try LayerNorm(weights.scoped("layer_norm2"), size: config.hiddenSize, eps: config.layerNormEps)
        mlp = try MLP(weights.scoped("mlp"), hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
                      activation: config.hiddenAct)
    }

    /// Applies the block to `x` `[B, T, C]`; `causal` masks future tokens.
    public func callAsFunction(_ x: Tensor, causal: Bool) -> Tensor {
        var output = x.asF32()
        forward(inPlace: &output, causal: causal, batchExact: true)
        return output
    }

    /// Applies the block and also returns its attention keys and values (`[B, T, C]`).
    public func forward(_ x: Tensor, causal: Bool) -> (output: Tensor, keys: Tensor, values: Tensor) {
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        var output = x.asF32()
        var keysValues = Tensor(zeros: [batch * tokens, 2 * width])
        keysValues.withUnsafeMutableFloats { kv in forward(inPlace: &output, causal: causal, keysValues: kv.baseAddress!, batchExact: true) }
        return (output, keysValues.gatheringColumns(0..<width, shape: [batch, tokens, width]),
                keysValues.gatheringColumns(width..<(2 * width), shape: [batch, tokens, width]))
    }

    /// Applies the block to `hidden` `[B, T, C]` in place (the residual stream of a
    /// tower's layer loop: nothing is allocated), optionally writing every token's
    /// key and value to `keysValues` `[B·T, 2C]`. `batchExact`: each sequence's
    /// result equals its own alone, bit for bit (the image tower; see
    /// `PreNormBlock.forward(_:batch:tokens:causal:keysValues:batchExact:)`).
    func forward(inPlace hidden: inout Tensor, causal: Bool, keysValues: UnsafeMutablePointer<Float>? = nil,
                 batchExact: Bool) {
        let (batch, tokens) = (hidden.shape[0], hidden.shape[1])
        hidden.withUnsafeMutableFloats {
            block.forward($0.baseAddress!, batch: batch, tokens: tokens, causal: causal, keysValues: keysValues,
                          batchExact: batchExact)
        }
    }

    /// The block's output at row `row` of each sequence of `x` `[B, T, C]` only:
    /// `[B, C]` (a tower's last layer when one token per sequence is pooled).
    func forward(pooling row: Int, of x: Tensor, causal: Bool, batchExact: Bool) -> Tensor {
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        let input = x.asF32()
        return Tensor(shape: [batch, width]) { out in
            withExtendedLifetime(input) {
                block.forward(pooling: row, of: input.unsafeFloatPointer, batch: batch, tokens: tokens, causal: causal,
                              batchExact: batchExact, into: out)
            }
        }
    }

    /// The block's weights as the shared pre-LayerNorm forward pass sees them.
    var block: PreNormBlock {
        PreNormBlock(layerNorm1: layerNorm1,
                     qkv: .separate(query: selfAttention.queryProjection, key: selfAttention.keyProjection,
                                    value: selfAttention.valueProjection),
                     outputProjection: selfAttention.outputProjection, layerNorm2: layerNorm2, fc1: mlp.fc1, fc2: mlp.fc2,
                     activation: mlp.activation, heads: selfAttention.heads)
    }
}
