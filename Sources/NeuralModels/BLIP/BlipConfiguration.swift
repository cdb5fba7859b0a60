// Port of transformers/models/blip/configuration_blip.py (BlipTextConfig,
// BlipVisionConfig, BlipConfig): the fields inference needs, with the same defaults.
import Foundation
import NeuralCore

/// `text_config` of a Hugging Face `BlipConfig`: the BERT-style caption decoder.
///
/// Absent keys take `BlipTextConfig`'s defaults (768 wide, 12 layers, **8** heads,
/// 3072 MLP, 512 positions, vocabulary 30524, bos 30522, sep 102, pad 0, eos 2).
/// An explicit JSON `null` for a token id decodes as `nil`.
public struct BlipTextConfig: Decodable, Sendable, Equatable {
    /// The transformer's shape; `encoderHiddenSize` is the vision width the
    /// cross-attention reads (``BlipConfiguration`` sets it from `vision_config`).
    public var bert: BertConfig
    /// Word embedding rows and LM-head outputs (`vocab_size`).
    public var vocabSize: Int
    /// Position embedding rows (`max_position_embeddings`).
    public var maxPositionEmbeddings: Int
    /// The id generation starts from (`bos_token_id`, BLIP's `[DEC]`).
    public var bosTokenId: Int?
    /// `eos_token_id` as the config states it (one id or a list). BLIP's `generate`
    /// does not stop at it: it passes ``sepTokenId`` as the end token.
    public var eosTokenIds: [Int]
    /// The id finished sequences are padded with (`pad_token_id`).
    public var padTokenId: Int?
    /// The id that ends a caption (`sep_token_id`, `[SEP]`).
    public var sepTokenId: Int?
    /// Whether the LM head's weight is the word-embedding table (`tie_word_embeddings`).
    public var tieWordEmbeddings: Bool

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", encoderHiddenSize = "encoder_hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
        case sepTokenId = "sep_token_id", tieWordEmbeddings = "tie_word_embeddings"
    }

    /// Decodes with `BlipTextConfig`'s defaults for absent keys.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        guard let activation = Activation(huggingFaceName: act) else {
            throw DecodingError.dataCorruptedError(forKey: .hiddenAct, in: c, debugDescription: "unsupported hidden_act '\(act)'")
        }
        bert = BertConfig(
            hiddenSize: try c.size(.hiddenSize, default: 768, in: ConfigLimits.width),
            numAttentionHeads: try c.size(.numAttentionHeads, default: 8, in: ConfigLimits.heads),
            intermediateSize: try c.size(.intermediateSize, default: 3072, in: ConfigLimits.width),
            numHiddenLayers: try c.size(.numHiddenLayers, default: 12, in: ConfigLimits.layers),
            hiddenAct: activation,
            layerNormEps: try c.epsilon(.layerNormEps, default: 1e-12),
            encoderHiddenSize: try c.size(.encoderHiddenSize, default: 768, in: ConfigLimits.width))
        vocabSize = try c.size(.vocabSize, default: 30524, in: ConfigLimits.vocabulary)
        maxPositionEmbeddings = try c.size(.maxPositionEmbeddings, default: 512, in: ConfigLimits.positions)
        bosTokenId = try Self.tokenId(c, .bosTokenId, default: 30522)
        padTokenId = try Self.tokenId(c, .padTokenId, default: 0)
        sepTokenId = try Self.tokenId(c, .sepTokenId, default: 102)
        if c.contains(.eosTokenId), try c.decodeNil(forKey: .eosTokenId) {
            eosTokenIds = []
        } else if let list = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenIds = list
        } else {
            eosTokenIds = [try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? 2]
        }
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? true
        guard bert.hiddenSize % bert.numAttentionHeads == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c,
                debugDescription: "hidden_size \(bert.hiddenSize) is not divisible by num_attention_heads \(bert.numAttentionHeads)")
        }
    }

    /// A token id: the value when present, `nil` for an explicit `null`, `fallback` when absent.
    private static func tokenId(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, default fallback: Int) throws -> Int? {
        guard c.contains(key) else { return fallback }
        if try c.decodeNil(forKey: key) { return nil }
        return try c.decode(Int.self, forKey: key)
    }
}

/// `vision_config` of a Hugging Face `BlipConfig`: the ViT image encoder.
///
/// Absent keys take `BlipVisionConfig`'s defaults (768 wide, 12 layers, 12 heads,
/// 3072 MLP, 384 pixels, patch 16, exact GELU, LayerNorm eps 1e-5).
public struct BlipVisionConfig: Decodable, Sendable, Equatable {
    /// Residual stream width (`hidden_size`).
    public var hiddenSize: Int
    /// MLP width (`intermediate_size`).
    public var intermediateSize: Int
    /// Encoder layers (`num_hidden_layers`).
    public var numHiddenLayers: Int
    /// Attention heads (`num_attention_heads`).
    public var numAttentionHeads: Int
    /// Input resolution (`image_size`, square).
    public var imageSize: Int
    /// Patch side (`patch_size`).
    public var patchSize: Int
    /// The MLP activation (`hidden_act`).
    public var hiddenAct: Activation
    /// LayerNorm epsilon (`layer_norm_eps`).
    public var layerNormEps: Float
    /// Input channels: BLIP's patch convolution always takes RGB.
    public var numChannels: Int { 3 }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case imageSize = "image_size", patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    /// Decodes with `BlipVisionConfig`'s defaults for absent keys. `image_size` and
    /// `patch_size` may be one number or a square `[h, w]` pair.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.size(.hiddenSize, default: 768, in: ConfigLimits.width)
        intermediateSize = try c.size(.intermediateSize, default: 3072, in: ConfigLimits.width)
        numHiddenLayers = try c.size(.numHiddenLayers, default: 12, in: ConfigLimits.layers)
        numAttentionHeads = try c.size(.numAttentionHeads, default: 12, in: ConfigLimits.heads)
        imageSize = try Self.squareSize(c, .imageSize) ?? 384
        patchSize = try Self.squareSize(c, .patchSize) ?? 16
        try c.require(ConfigLimits.imageSide.contains(imageSize), .imageSize,
                      "\(imageSize) is outside \(ConfigLimits.imageSide.lowerBound)...\(ConfigLimits.imageSide.upperBound)")
        try c.require(ConfigLimits.imageSide.contains(patchSize), .patchSize,
                      "\(patchSize) is outside \(ConfigLimits.imageSide.lowerBound)...\(ConfigLimits.imageSide.upperBound)")
        let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        guard let activation = Activation(huggingFaceName: act) else {
            throw DecodingError.dataCorruptedError(forKey: .hiddenAct, in: c, debugDescription: "unsupported hidden_act '\(act)'")
        }
        hiddenAct = activation
        layerNormEps = try c.epsilon(.layerNormEps, default: 1e-5)
        guard hiddenSize % numAttentionHeads == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c,
                debugDescription: "hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard imageSize % patchSize == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .patchSize, in: c,
                debugDescription: "image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
    }

    private static func squareSize(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        if let value = try? c.decodeIfPresent(Int.self, forKey: key) { return value }
        guard let pair = try c.decodeIfPresent([Int].self, forKey: key) else { return nil }
        guard pair.count == 2, pair[0] == pair[1] else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "non-square \(key.rawValue) \(pair)")
        }
        return pair[0]
    }

    /// Patches per side.
    public var gridSize: Int { imageSize / patchSize }
    /// Tokens per image: the patches plus the class token.
    public var tokenCount: Int { gridSize * gridSize + 1 }
    /// The width of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// A Hugging Face `BlipConfig` (`config.json` of `Salesforce/blip-image-captioning-*`).
///
/// As `BlipConfig.__post_init__` does, the text decoder's `encoder_hidden_size` is
/// always the vision width, whatever `text_config` says.
public struct BlipConfiguration: Decodable, Sendable, Equatable {
    /// The caption decoder.
    public var textConfig: BlipTextConfig
    /// The image encoder.
    public var visionConfig: BlipVisionConfig

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config"
    }

    /// Decodes `config.json`; absent sections and keys take transformers' defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let empty = Data("{}".utf8)
        textConfig = try c.decodeIfPresent(BlipTextConfig.self, forKey: .textConfig) ?? JSONDecoder().decode(BlipTextConfig.self, from: empty)
        visionConfig = try c.decodeIfPresent(BlipVisionConfig.self, forKey: .visionConfig) ?? JSONDecoder().decode(BlipVisionConfig.self, from: empty)
        textConfig.bert.encoderHiddenSize = visionConfig.hiddenSize
    }
}
