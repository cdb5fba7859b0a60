// Port of transformers/models/clip/configuration_clip.py (the fields inference needs).
import Foundation
import NeuralCore

/// `text_config` of a Hugging Face `CLIPConfig`.
public struct CLIPTextConfig: Decodable, Sendable, Equatable {
    /// The transformer's shape and activation.
    public var encoder: CLIPEncoderConfig
    /// Token embedding rows (`vocab_size`).
    public var vocabSize: Int
    /// Position embedding rows, the context length (`max_position_embeddings`).
    public var maxPositionEmbeddings: Int
    /// Start-of-text id (`bos_token_id`).
    public var bosTokenId: Int
    /// End-of-text id (`eos_token_id`); `2` marks the legacy configs whose pooling
    /// takes the position of the largest id instead.
    public var eosTokenId: Int
    /// Padding id (`pad_token_id`).
    public var padTokenId: Int

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
    }

    /// Decodes with `CLIPTextConfig`'s defaults for absent keys.
    public init(from decoder: any Decoder) throws {
        encoder = try CLIPEncoderConfig(from: decoder, defaults: .textDefaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.size(.vocabSize, default: 49408, in: ConfigLimits.vocabulary)
        maxPositionEmbeddings = try c.size(.maxPositionEmbeddings, default: 77, in: ConfigLimits.positions)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? 49406
        eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? 49407
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? 1
    }

    /// The index transformers pools a tokenised sequence at: for the legacy
    /// `eos_token_id == 2` configs the position of the largest id (its first
    /// occurrence), otherwise the first position holding `eos_token_id` (0 when
    /// there is none, as `argmax` of all zeros gives).
    public func pooledIndex(of ids: [Int]) -> Int {
        if eosTokenId == 2 {
            var best = 0
            for (i, id) in ids.enumerated() where id > ids[best] { best = i }
            return best
        }
        return ids.firstIndex(of: eosTokenId) ?? 0
    }
}

/// `vision_config` of a Hugging Face `CLIPConfig`.
public struct CLIPVisionConfig: Decodable, Sendable, Equatable {
    /// The transformer's shape and activation.
    public var encoder: CLIPEncoderConfig
    /// Input resolution (`image_size`).
    public var imageSize: Int
    /// Patch side (`patch_size`).
    public var patchSize: Int
    /// Input channels (`num_channels`).
    public var numChannels: Int

    enum CodingKeys: String, CodingKey {
        case imageSize = "image_size", patchSize = "patch_size", numChannels = "num_channels"
    }

    /// Decodes with `CLIPVisionConfig`'s defaults for absent keys.
    public init(from decoder: any Decoder) throws {
        encoder = try CLIPEncoderConfig(from: decoder, defaults: .visionDefaults)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageSize = try c.size(.imageSize, default: 224, in: ConfigLimits.imageSide)
        patchSize = try c.size(.patchSize, default: 32, in: ConfigLimits.imageSide)
        // Images are decoded to RGB: a patch embedding over other channel counts cannot take them.
        numChannels = try c.size(.numChannels, default: 3, in: 3...3)
        guard imageSize % patchSize == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .patchSize, in: c,
                debugDescription: "image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
    }

    /// Patches per side.
    public var gridSize: Int { imageSize / patchSize }
    /// Tokens per image: the patches plus the class token.
    public var tokenCount: Int { gridSize * gridSize + 1 }
}

/// A Hugging Face `CLIPConfig` (`config.json` of `openai/clip-vit-*`,
/// `laion/CLIP-ViT-*`): both towers and the shared embedding width.
public struct CLIPConfiguration: Decodable, Sendable, Equatable {
    /// The text tower.
    public var textConfig: CLIPTextConfig
    /// The vision tower.
    public var visionConfig: CLIPVisionConfig
    /// The shared embedding width (`projection_dim`).
    public var projectionDim: Int

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config", projectionDim = "projection_dim"
    }

    /// Decodes `config.json`; absent sections and keys take transformers' defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        textConfig = try c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfig) ?? JSONDecoder().decode(CLIPTextConfig.self, from: Data("{}".utf8))
        visionConfig = try c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfig) ?? JSONDecoder().decode(CLIPVisionConfig.self, from: Data("{}".utf8))
        projectionDim = try c.size(.projectionDim, default: 512, in: ConfigLimits.width)
    }
}
