import Foundation
import NeuralCore
import NeuralModels

/// `zip` of two optionals: both values, or nil.
private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

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
        // One token, so that (20 tokens − 1 token) / 19 is a decoder step inside generate.
        let one = GenerationOptions(maxNewTokens: 1, minNewTokens: 1, numBeams: 1)
        let single = try measure(stage: "5 blip", "BLIP-large 1-token caption, greedy", runs: runs, items: 1) {
            _ = try model.generate(pixelValues: pixels, options: one)
        }
        results.append(single)
        results.append(decoderStep(twenty: results[1], one: single))
        results.append(try decoderStepAlone(model, pixels: pixels, runs: runs))
        return results
    }

    /// One greedy decoder step on its own: the 11th token after a 10-token prefix
    /// whose caches are ready (cross-attention keys and values computed once),
    /// logits for the whole vocabulary and their argmax; each run starts from a
    /// copy of the prefix's state. The PyTorch side runs `text_decoder` with the
    /// prefix's cache, then crops the cache back.
    static func decoderStepAlone(_ model: BlipForConditionalGeneration, pixels: Tensor, runs: Int) throws -> Measurement {
        let decoder = model.textDecoder
        let context = decoder.imageContext(try model.visionModel.encode(pixels).imageEmbeds)
        var prefix = decoder.makeState(context: context, inputOfRow: [0], capacity: 32)
        _ = try decoder.nextTokenLogits([[model.configuration.textConfig.bosTokenId ?? 0] + Array(1000..<1009)], state: &prefix)
        return try measure(stage: "5 blip", decoderStepAloneName, runs: max(5, runs * 5), items: 1) {
            var state = prefix
            let logits = try decoder.nextTokenLogits([[1009]], state: &state).floats()
            var best = 0
            for i in logits.indices where logits[i] > logits[best] { best = i }
            precondition(best >= 0)
        }
    }

    static let decoderStepAloneName = "BLIP-large decoder step alone (token 11 after a cached 10-token prefix, greedy)"

    /// A greedy decoder step inside generate, from the 20-token and 1-token
    /// captions: (t₂₀ − t₁) / 19 (vision tower, cross-attention keys and the first
    /// step cancel out). The PyTorch side derives it the same way.
    static func decoderStep(twenty: Measurement, one: Measurement) -> Measurement {
        func step(_ a: Double, _ b: Double) -> Double { max(0, a - b) / 19 }
        var m = twenty
        m.name = decoderStepName
        m.medianSeconds = step(twenty.medianSeconds, one.medianSeconds)
        m.minSeconds = step(twenty.minSeconds, one.maxSeconds)
        m.maxSeconds = step(twenty.maxSeconds, one.minSeconds)
        m.cpuMedianSeconds = zip(twenty.cpuMedianSeconds, one.cpuMedianSeconds).map(step)
        m.threadCPUMedianSeconds = zip(twenty.threadCPUMedianSeconds, one.threadCPUMedianSeconds).map(step)
        m.itemsPerSecond = m.medianSeconds > 0 ? 1 / m.medianSeconds : nil
        return m
    }

    static let decoderStepName = "BLIP-large decoder step, greedy ((20-token − 1-token caption) / 19)"
}
