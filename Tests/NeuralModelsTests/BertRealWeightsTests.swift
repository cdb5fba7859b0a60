import Foundation
import NeuralCore
import NeuralModels
import TestSupport
import XCTest

/// The BERT encoder on the real all-MiniLM-L6-v2 weights (fetched by
/// `bash Weights/fetch-minilm.sh`, which the test command `bash Tests/run.sh` runs) against transformers'
/// outputs (Tests/Fixtures/minilm, written by Weights/fixtures/make_minilm_fixtures.py).
final class BertRealWeightsTests: XCTestCase {
    static let modelDirectory = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Weights/cache/all-MiniLM-L6-v2")

    func loadModel() throws -> BertModel {
        guard FileManager.default.fileExists(atPath: Self.modelDirectory.appendingPathComponent("model.safetensors").path) else {
            XCTFail("the real all-MiniLM-L6-v2 weights are missing: run the tests with `bash Tests/run.sh`, which fetches them (or `bash Weights/fetch-minilm.sh` once)")
            throw CheckpointError.missingFile(path: Self.modelDirectory.path)
        }
        return try BertModel(directory: Self.modelDirectory)
    }

    func testHiddenStatesAndSentenceEmbeddingsMatchTransformers() throws {
        let model = try loadModel()
        let golden = try SafeTensorsFile(contentsOf: Fixtures.url("minilm/golden.safetensors"))
        let padded = try golden.tensor("input_ids")
        let lengths = try golden.tensor("lengths").integers().map { Int($0) }
        let width = padded.shape[1]
        let flat = padded.integers().map { Int($0) }
        let ids = lengths.enumerated().map { b, length in Array(flat[(b * width)..<(b * width + length)]) }
        XCTAssertGreaterThanOrEqual(ids.count, 20)

        let (last, all) = try model.encode(ids, allHiddenStates: true)
        XCTAssertEqual(last.shape, [ids.count, width, 384])
        // Compare the real tokens of every sentence (padding rows are undefined).
        let expectedLast = try golden.tensor("last_hidden_state").floats(), actualLast = last.floats()
        for (b, length) in lengths.enumerated() {
            let range = (b * width * 384)..<((b * width + length) * 384)
            assertClose(Array(actualLast[range]), Array(expectedLast[range]), tolerance: 1e-4, "sentence \(b) last hidden state")
        }
        for layer in 0..<all.count {
            let expected = try golden.tensor("hidden_states.\(layer)").floats(), actual = all[layer].floats()
            for b in 0..<3 {
                let range = (b * width * 384)..<((b * width + lengths[b]) * 384)
                assertClose(Array(actual[range]), Array(expected[range]), tolerance: 1e-4, "hidden state \(layer), sentence \(b)")
            }
        }
        let pooled = model.meanPooled(last, lengths: lengths).floats()
        let expectedPooled = try golden.tensor("mean_pooled").floats()
        for b in 0..<ids.count {
            let a = Array(pooled[(b * 384)..<((b + 1) * 384)]), e = Array(expectedPooled[(b * 384)..<((b + 1) * 384)])
            let dot = zip(a, e).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let cosine = dot / (sqrt(a.reduce(0.0) { $0 + Double($1 * $1) }) * sqrt(e.reduce(0.0) { $0 + Double($1 * $1) }))
            XCTAssertGreaterThanOrEqual(cosine, 0.99999, "sentence \(b) embedding cosine")
        }
    }
}
