import Foundation
import NeuralCore
@testable import NeuralModels
import TestSupport
import XCTest

/// Whole layers against transformers 5.24's modules with tiny random weights
/// (Tests/Fixtures/core/layers.safetensors, written by
/// Weights/fixtures/make_core_fixtures.py): max |Δ| ≤ 1e-4.
final class LayerParityTests: XCTestCase {
    var store: WeightStore!
    var root: WeightScope { WeightScope(store) }

    override func setUpWithError() throws {
        store = try WeightStore(contentsOf: Fixtures.url("core/layers.safetensors"))
    }

    func tensor(_ key: String) throws -> Tensor { try store.tensor(key) }

    func metadataConfig<T: Decodable>(_ type: T.Type, _ prefix: String) throws -> T {
        let file = try SafeTensorsFile(contentsOf: Fixtures.url("core/layers.safetensors"))
        let json = try XCTUnwrap(file.metadata["\(prefix).config"], "config of \(prefix)")
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    func testCLIPAttention() throws {
        let config = try metadataConfig(CLIPEncoderConfig.self, "clip_attention")
        let attention = try CLIPAttention(root.scoped("clip_attention"), config)
        let x = try tensor("clip_attention.input")
        assertClose(attention(x, causal: false).floats(), try tensor("clip_attention.output").floats(), tolerance: 1e-4, "attention")
        assertClose(attention(x, causal: true).floats(), try tensor("clip_attention.output_causal").floats(), tolerance: 1e-4, "causal attention")
    }

    func testCLIPMLPWithBothActivations() throws {
        for prefix in ["clip_mlp_quick", "clip_mlp_gelu"] {
            let config = try metadataConfig(CLIPEncoderConfig.self, prefix)
            let mlp = try MLP(root.scoped(prefix), hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
                              activation: config.hiddenAct)
            assertClose(mlp(try tensor("\(prefix).input")).floats(), try tensor("\(prefix).output").floats(), tolerance: 1e-4, prefix)
        }
    }

    func testPreLayerNormCLIPEncoderLayer() throws {
        for prefix in ["clip_layer", "clip_layer_gelu"] {
            let config = try metadataConfig(CLIPEncoderConfig.self, prefix)
            let layer = try CLIPEncoderLayer(root.scoped(prefix), config)
            let x = try tensor("\(prefix).input")
            assertClose(layer(x, causal: false).floats(), try tensor("\(prefix).output").floats(), tolerance: 1e-4, prefix)
            if prefix == "clip_layer" {
                assertClose(layer(x, causal: true).floats(), try tensor("\(prefix).output_causal").floats(), tolerance: 1e-4, "\(prefix) causal")
            }
        }
        // The block computed for one row per sequence only (a tower's last layer) gives those rows of the full output.
        let layer = try CLIPEncoderLayer(root.scoped("clip_layer"), try metadataConfig(CLIPEncoderConfig.self, "clip_layer"))
        let x = try tensor("clip_layer.input")
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        for causal in [false, true] {
            let full = layer(x, causal: causal).floats()
            for row in [0, 5, tokens - 1] {
                var expected: [Float] = []
                for b in 0..<batch {
                    let start = (b * tokens + row) * width
                    expected += full[start..<(start + width)]
                }
                for batchExact in [false, true] {
                    assertClose(layer.forward(pooling: row, of: x, causal: causal, batchExact: batchExact).floats(), expected,
                                tolerance: 1e-5, "clip_layer pooled row \(row) causal=\(causal) batchExact=\(batchExact)")
                }
            }
        }
        // LayerNorm on its own, as the layer's first step.
        let config = try metadataConfig(CLIPEncoderConfig.self, "clip_layer")
        let norm = try LayerNorm(root.scoped("clip_layer.layer_norm1"), size: config.hiddenSize, eps: config.layerNormEps)
        XCTAssertEqual(norm(try tensor("clip_layer.input")).shape, [2, 11, 64])
    }

    func testPostLayerNormBertLayerWithCrossAttention() throws {
        let config = try metadataConfig(BertConfig.self, "bert_layer")
        XCTAssertEqual(config.encoderHiddenSize, 48)
        let layer = try BertLayer(root.scoped("bert_layer"), config)
        XCTAssertNotNil(layer.crossAttention)
        let output = layer(try tensor("bert_layer.input"), masking: .causal, encoderStates: try tensor("bert_layer.encoder_hidden_states"))
        assertClose(output.floats(), try tensor("bert_layer.output").floats(), tolerance: 1e-4, "BLIP text layer")
    }

    func testBertEncoderLayerWithPaddingMask() throws {
        let config = try metadataConfig(BertConfig.self, "bert_plain")
        let layer = try BertLayer(root.scoped("bert_plain"), config)
        XCTAssertNil(layer.crossAttention)
        let lengths = try tensor("bert_plain.lengths").integers().map { Int($0) }
        let output = layer(try tensor("bert_plain.input"), masking: .padding(lengths: lengths))
        assertClose(output.floats(), try tensor("bert_plain.output").floats(), tolerance: 1e-4, "BERT layer, padded batch")
    }

    func testPatchEmbeddingWithAndWithoutBias() throws {
        for prefix in ["patch_bias", "patch_nobias"] {
            let input = try tensor("\(prefix).input"), weight = try tensor("\(prefix).weight")
            let (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
            let (out, patch) = (weight.shape[0], weight.shape[2])
            let bias = prefix == "patch_bias" ? try tensor("\(prefix).bias").floats() : nil
            let expected = try tensor("\(prefix).output")
            var y = [Float](repeating: 0, count: expected.count)
            var scratch = [Float](repeating: 0, count: expected.shape[1] * channels * patch * patch)
            let w = weight.floats()
            (bias ?? []).withUnsafeBufferPointer { b in
                patchEmbedding(&y, input.floats(), weight: w, bias: bias == nil ? nil : b.baseAddress, batch: batch,
                               channels: channels, height: height, width: width, patch: patch, outChannels: out, scratch: &scratch)
            }
            assertClose(y, expected.floats(), tolerance: 1e-4, prefix)
        }
    }

    func testEveryParameterInTheFixtureIsConsumed() throws {
        try testCLIPAttention()
        try testCLIPMLPWithBothActivations()
        try testPreLayerNormCLIPEncoderLayer()
        try testPostLayerNormBertLayerWithCrossAttention()
        try testBertEncoderLayerWithPaddingMask()
        try testPatchEmbeddingWithAndWithoutBias()
        // The fixture's inputs and outputs sit beside the parameters; everything else must be used.
        let io: Set<String> = ["input", "output", "output_causal", "encoder_hidden_states", "lengths"]
        let parameters = store.unconsumed.keys.filter { !io.contains(String($0.split(separator: ".", maxSplits: 1)[1])) }
        XCTAssertEqual(parameters.sorted(), [], "parameters the layers did not load")
    }
}
