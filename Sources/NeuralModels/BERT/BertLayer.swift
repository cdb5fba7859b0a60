// Port of transformers/models/bert/modeling_bert.py (BertLayer and its parts) and
// transformers/models/blip/modeling_blip_text.py (BlipTextLayer, the same module
// tree plus cross-attention): post-LayerNorm transformer blocks.
import NeuralCore

/// The hyper-parameters of a BERT-style encoder or decoder, decoded from a Hugging
/// Face `BertConfig` or BLIP `text_config`, with BERT-base defaults.
public struct BertConfig: Codable, Sendable, Equatable {
    /// Residual stream width (`hidden_size`).
    public var hiddenSize: Int
    /// Attention heads (`num_attention_heads`).
    public var numAttentionHeads: Int
    /// Feed-forward width (`intermediate_size`).
    public var intermediateSize: Int
    /// Number of layers (`num_hidden_layers`).
    public var numHiddenLayers: Int
    /// Feed-forward activation (`hidden_act`).
    public var hiddenAct: Activation
    /// LayerNorm epsilon (`layer_norm_eps`).
    public var layerNormEps: Float
    /// Width of the states cross-attention reads (`encoder_hidden_size`, BLIP's
    /// vision width); nil when absent.
    public var encoderHiddenSize: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case encoderHiddenSize = "encoder_hidden_size"
    }

    /// Creates a config from explicit values.
    public init(hiddenSize: Int = 768, numAttentionHeads: Int = 12, intermediateSize: Int = 3072,
                numHiddenLayers: Int = 12, hiddenAct: Activation = .gelu, layerNormEps: Float = 1e-12,
                encoderHiddenSize: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.encoderHiddenSize = encoderHiddenSize
    }

    /// Decodes from a Hugging Face config object; absent keys take BERT-base values.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        guard let activation = Activation(huggingFaceName: act) else {
            throw DecodingError.dataCorruptedError(forKey: .hiddenAct, in: c, debugDescription: "unsupported hidden_act '\(act)'")
        }
        self.init(
            hiddenSize: try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 768,
            numAttentionHeads: try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 12,
            intermediateSize: try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 3072,
            numHiddenLayers: try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 12,
            hiddenAct: activation,
            layerNormEps: try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-12,
            encoderHiddenSize: try c.decodeIfPresent(Int.self, forKey: .encoderHiddenSize))
    }

    /// The width of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// Which keys each query of a self-attention may see.
public enum AttentionMasking: Sendable, Equatable {
    /// Every query sees every key (an encoder without padding).
    case none
    /// Query `i` sees keys `0...i` (a decoder).
    case causal
    /// Sequence `b` of the batch has `lengths[b]` real tokens, the rest padding
    /// (an encoder over a padded batch).
    case padding(lengths: [Int])

    func mask(forSequence b: Int) -> SoftmaxMask {
        switch self {
        case .none: .none
        case .causal: SoftmaxMask(causalOffset: 0)
        case let .padding(lengths): SoftmaxMask(validColumns: lengths[b])
        }
    }
}

/// Attention followed by `dense` + residual + `LayerNorm` (BERT's `BertAttention`
/// = `self` + `output`). Used for self-attention (`attention`) and, with keys and
/// values read from another sequence, for cross-attention (`crossattention`).
public struct BertAttention: Sendable {
    /// `self.query`.
    public let query: Linear
    /// `self.key` (input width: hidden, or the encoder's for cross-attention).
    public let key: Linear
    /// `self.value` (same input width as `key`).
    public let value: Linear
    /// `output.dense`.
    public let outputDense: Linear
    /// `output.LayerNorm`.
    public let outputLayerNorm: LayerNorm
    /// The head count.
    public let heads: Int

    /// Loads the block; `keyValueWidth` is the width of the states keys and values
    /// are computed from (the hidden size for self-attention).
    public init(_ weights: WeightScope, _ config: BertConfig, keyValueWidth: Int) throws {
        let c = config.hiddenSize
        query = try Linear(weights.scoped("self.query"), inFeatures: c, outFeatures: c)
        key = try Linear(weights.scoped("self.key"), inFeatures: keyValueWidth, outFeatures: c)
        value = try Linear(weights.scoped("self.value"), inFeatures: keyValueWidth, outFeatures: c)
        outputDense = try Linear(weights.scoped("output.dense"), inFeatures: c, outFeatures: c)
        outputLayerNorm = try LayerNorm(weights.scoped("output.LayerNorm"), size: c, eps: config.layerNormEps)
        heads = config.numAttentionHeads
    }

    /// `LayerNorm(x + dense(attention(x → keysFrom)))` for `x` `[B, T, C]` and
    /// `keysFrom` `[B, S, E]` (`x` itself for self-attention).
    public func callAsFunction(_ x: Tensor, keysFrom source: Tensor, masking: AttentionMasking) -> Tensor {
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        let sourceTokens = source.shape[1]
        let q = query(x), k = key(source), v = value(source)
        let headDim = width / heads
        let context = Tensor(shape: x.shape) { out in
            withExtendedLifetime((q, k, v)) {
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tokens * sourceTokens)
                defer { scratch.deallocate() }
                for b in 0..<batch {
                    multiHeadAttention(
                        out + b * tokens * width, ldo: width,
                        q: q.unsafeFloatPointer + b * tokens * width, ldq: width,
                        k: k.unsafeFloatPointer + b * sourceTokens * width, ldk: width,
                        v: v.unsafeFloatPointer + b * sourceTokens * width, ldv: width,
                        queryCount: tokens, keyCount: sourceTokens, heads: heads, headDim: headDim,
                        scale: 1 / Float(headDim).squareRoot(), mask: masking.mask(forSequence: b), scratch: scratch)
                }
            }
        }
        var projected = outputDense(context)
        projected.add(x)
        return outputLayerNorm(projected)
    }
}

/// One post-LayerNorm BERT block: self-attention, optional cross-attention to
/// encoder states (BLIP's text decoder), and the feed-forward
/// `LayerNorm(h + output.dense(act(intermediate.dense(h))))`.
public struct BertLayer: Sendable {
    /// `attention`.
    public let attention: BertAttention
    /// `crossattention`, present when the checkpoint has it.
    public let crossAttention: BertAttention?
    /// `intermediate.dense`.
    public let intermediateDense: Linear
    /// `output.dense`.
    public let outputDense: Linear
    /// `output.LayerNorm`.
    public let outputLayerNorm: LayerNorm
    /// The feed-forward activation.
    public let activation: Activation

    /// Loads the block; cross-attention is loaded when the scope has
    /// `crossattention.*` weights (its key/value input width is
    /// `config.encoderHiddenSize`).
    public init(_ weights: WeightScope, _ config: BertConfig) throws {
        let c = config.hiddenSize
        attention = try BertAttention(weights.scoped("attention"), config, keyValueWidth: c)
        if weights.contains("crossattention.self.query.weight") {
            crossAttention = try BertAttention(weights.scoped("crossattention"), config,
                                               keyValueWidth: config.encoderHiddenSize ?? c)
        } else {
            crossAttention = nil
        }
        intermediateDense = try Linear(weights.scoped("intermediate.dense"), inFeatures: c, outFeatures: config.intermediateSize)
        outputDense = try Linear(weights.scoped("output.dense"), inFeatures: config.intermediateSize, outFeatures: c)
        outputLayerNorm = try LayerNorm(weights.scoped("output.LayerNorm"), size: c, eps: config.layerNormEps)
        activation = config.hiddenAct
    }

    /// Applies the block to `x` `[B, T, C]`; `encoderStates` `[B, S, E]` feed the
    /// cross-attention when the layer has one.
    public func callAsFunction(_ x: Tensor, masking: AttentionMasking, encoderStates: Tensor? = nil) -> Tensor {
        var hidden = attention(x, keysFrom: x, masking: masking)
        if let crossAttention, let encoderStates {
            hidden = crossAttention(hidden, keysFrom: encoderStates, masking: .none)
        }
        var intermediate = intermediateDense(hidden)
        intermediate.withUnsafeMutableFloats { activate($0.baseAddress!, count: $0.count, activation) }
        var output = outputDense(intermediate)
        output.add(hidden)
        return outputLayerNorm(output)
    }
}
