import Foundation
import NeuralCore
import NeuralModels

/// Stage 5: BLIP-large's vision tower and a 20-token caption.
enum BlipStage {
    /// Salesforce/blip-image-captioning-large's shapes.
    static let blipLarge = """
        {"text_config": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 1024, "intermediate_size": 3072,
                         "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512,
                         "bos_token_id": 30522, "sep_token_id": 102, "pad_token_id": 0},
         "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                           "num_attention_heads": 16, "image_size": 384, "patch_size": 16}}
        """

    static func model() throws -> BlipForConditionalGeneration {
        let configuration = try JSONDecoder().decode(BlipConfiguration.self, from: Data(blipLarge.utf8))
        return try BlipForConditionalGeneration(WeightScope(WeightStore(source: SyntheticWeights(seed: 2))), configuration: configuration)
    }

    static func run(runs: Int) throws -> [Measurement] {
        let model = try model()
        let pixels = BenchmarkModels.pixels(batch: 1, size: 384)
        var results = [try measure(stage: "5 blip", "BLIP-large vision tower (384², batch 1)", runs: runs, items: 1) {
            _ = try model.visionModel.encode(pixels)
        }]
        // Exactly 20 new tokens (random weights would otherwise stop at any point).
        for beams in [1, 3] {
            let options = GenerationOptions(maxNewTokens: 20, minNewTokens: 20, numBeams: beams)
            results.append(try measure(stage: "5 blip", "BLIP-large 20-token caption, \(beams == 1 ? "greedy" : "\(beams) beams")",
                                       runs: runs, items: 1) {
                _ = try model.generate(pixelValues: pixels, options: options)
            })
        }
        return results
    }
}
