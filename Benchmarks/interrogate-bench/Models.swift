import Foundation
import NeuralCore
import NeuralModels

/// Full-size model shapes (the `config.json` fields that shape each model), built
/// with synthetic random weights in memory.
enum BenchmarkModels {
    static let vitB32 = """
        {"projection_dim": 512,
         "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8},
         "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                           "image_size": 224, "patch_size": 32}}
        """
    static let vitL14 = """
        {"projection_dim": 768,
         "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
         "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                           "image_size": 224, "patch_size": 14}}
        """

    static func clip(_ json: String, seed: UInt64 = 1) throws -> CLIPModel {
        let configuration = try JSONDecoder().decode(CLIPConfiguration.self, from: Data(json.utf8))
        return try CLIPModel(configuration: configuration, weights: WeightStore(source: SyntheticWeights(seed: seed)))
    }

    /// Deterministic pseudo-random pixels `[batch, 3, size, size]` in roughly the
    /// normalised range.
    static func pixels(batch: Int, size: Int) -> Tensor {
        Tensor(shape: [batch, 3, size, size]) { out in
            for i in 0..<(batch * 3 * size * size) { out[i] = Float((i &* 2_654_435_761) % 4001) / 1000 - 2 }
        }
    }

    /// Multiply-adds ×2 of a ViT forward pass over `tokens` tokens per image (what
    /// PyTorch computes). With `pooledLastLayer`, what the Swift tower executes:
    /// its last layer computes keys and values for every token but the rest only
    /// for the class token that is pooled.
    static func vitFlops(_ config: CLIPVisionConfig, images: Int, pooledLastLayer: Bool = false) -> Double {
        let (c, t, i, l) = (Double(config.encoder.hiddenSize), Double(config.tokenCount),
                            Double(config.encoder.intermediateSize), Double(config.encoder.numHiddenLayers))
        let perLayer = 2 * t * c * (4 * c + 2 * i) + 2 * 2 * t * t * c
        let last = pooledLastLayer ? 2 * t * c * 2 * c + 2 * c * (2 * c + 2 * i) + 2 * 2 * t * c : perLayer
        let patch = 2 * (t - 1) * c * Double(3 * config.patchSize * config.patchSize)
        return Double(images) * ((l - 1) * perLayer + last + patch)
    }

    /// The linear layers of a ViT forward pass over `images` images, as
    /// `y[M, N] = x[M, K] · Wᵀ` shapes with how often each runs (all layers at
    /// full length: the probe's reference rate).
    static func vitLinearShapes(_ config: CLIPVisionConfig, images: Int) -> [(m: Int, n: Int, k: Int, count: Int)] {
        let (c, t, i, l) = (config.encoder.hiddenSize, config.tokenCount, config.encoder.intermediateSize,
                            config.encoder.numHiddenLayers)
        let rows = images * t
        return [(rows, c, c, 4 * l), (rows, i, c, l), (rows, c, i, l),
                (images * (t - 1), c, 3 * config.patchSize * config.patchSize, 1)]
    }
}
