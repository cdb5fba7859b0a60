import Foundation
import NeuralCore
@testable import NeuralModels
import TestSupport
import XCTest

/// CLIP towers against transformers 5.24 on tiny random checkpoints in the exact
/// Hugging Face format (Tests/Fixtures/clip, written by
/// Weights/fixtures/make_clip_fixtures.py): every hidden state, the pooled
/// outputs, features and normalised embeddings within max |Δ| ≤ 1e-4.
final class CLIPParityTests: XCTestCase {
    static let checkpoints = ["tiny-quickgelu", "tiny-gelu-f16", "tiny-legacy-eos"]

    struct Golden {
        let file: SafeTensorsFile
        func floats(_ key: String) throws -> [Float] { try file.tensor(key).floats() }
        func tensor(_ key: String) throws -> Tensor { try file.tensor(key) }
        func ids() throws -> [[Int]] {
            let t = try file.tensor("input_ids")
            let flat = t.integers().map { Int($0) }
            return (0..<t.shape[0]).map { Array(flat[($0 * t.shape[1])..<(($0 + 1) * t.shape[1])]) }
        }
    }

    func load(_ name: String) throws -> (CLIPModel, Golden) {
        let directory = Fixtures.url("clip/\(name)")
        let model = try CLIPModel(directory: directory)
        return (model, Golden(file: try SafeTensorsFile(contentsOf: directory.appendingPathComponent("golden.safetensors"))))
    }

    /// Rows `0..<count` of sequence `b` in a `[B, T, C]` tensor.
    func rows(_ values: [Float], sequence b: Int, tokens: Int, width: Int, count: Int) -> [Float] {
        Array(values[(b * tokens * width)..<((b * tokens + count) * width)])
    }

    func testTextTowerHiddenStatesPooledAndEmbeddings() throws {
        for name in Self.checkpoints {
            let (model, golden) = try load(name)
            let ids = try golden.ids()
            let config = model.configuration.textConfig
            let width = config.encoder.hiddenSize
            let expectedPositions = try golden.tensor("eos_positions").integers().map { Int($0) }
            XCTAssertEqual(ids.map(config.pooledIndex(of:)), expectedPositions, "\(name): pooled positions")
            for (b, sequence) in ids.enumerated() {
                // The causal tower is run only up to the pooled token: its rows must
                // equal transformers' full-length rows there.
                let length = expectedPositions[b] + 1
                let (_, all) = try model.textModel.encode([Array(sequence.prefix(length))], allHiddenStates: true)
                XCTAssertEqual(all.count, config.encoder.numHiddenLayers + 1)
                for (layer, state) in all.enumerated() {
                    let expected = rows(try golden.floats("text_hidden_states.\(layer)"), sequence: b, tokens: 77, width: width, count: length)
                    assertClose(state.floats(), expected, tolerance: 1e-4, "\(name) text hidden state \(layer), sequence \(b)")
                }
                let lastNormed = model.textModel.finalLayerNorm(all.last!).floats()
                let expectedLast = rows(try golden.floats("text_last_hidden_state"), sequence: b, tokens: 77, width: width, count: length)
                assertClose(lastNormed, expectedLast, tolerance: 1e-4, "\(name) text last hidden state, sequence \(b)")
            }
            // Batched, grouped by length, through the public API.
            assertClose(try model.textFeatures(ids).floats(), try golden.floats("text_features"), tolerance: 1e-4, "\(name) text features")
            assertClose(try model.textEmbeddings(ids).floats(), try golden.floats("text_embeds"), tolerance: 1e-4, "\(name) text embeds")
        }
    }

    func testVisionTowerHiddenStatesPooledAndEmbeddings() throws {
        for name in Self.checkpoints {
            let (model, golden) = try load(name)
            let pixels = try golden.tensor("pixel_values")
            let (last, all) = try model.visionModel.encode(pixels, allHiddenStates: true)
            XCTAssertEqual(all.count, model.configuration.visionConfig.encoder.numHiddenLayers + 1)
            for (layer, state) in all.enumerated() {
                assertClose(state.floats(), try golden.floats("vision_hidden_states.\(layer)"), tolerance: 1e-4, "\(name) vision hidden state \(layer)")
            }
            assertClose(last.floats(), try golden.floats("vision_last_hidden_state"), tolerance: 1e-4, "\(name) vision last")
            assertClose(model.visionModel.pooled(last).floats(), try golden.floats("vision_pooled"), tolerance: 1e-4, "\(name) vision pooled")
            assertClose(try model.imageFeatures(pixels).floats(), try golden.floats("image_features"), tolerance: 1e-4, "\(name) image features")
            let imageEmbeds = try model.imageEmbeddings(pixels)
            assertClose(imageEmbeds.floats(), try golden.floats("image_embeds"), tolerance: 1e-4, "\(name) image embeds")

            // logits_per_image = exp(logit_scale) · image_embeds · text_embedsᵀ.
            let text = try model.textEmbeddings(try golden.ids())
            let d = model.embeddingDimension
            var logits = [Float](repeating: 0, count: 3 * 4)
            sgemm(transposeB: true, m: 3, n: 4, k: d, alpha: exp(model.logitScale), a: imageEmbeds.floats(), lda: d,
                  b: text.floats(), ldb: d, c: &logits, ldc: 4)
            assertClose(logits, try golden.floats("logits_per_image"), tolerance: 1e-3, "\(name) logits (scale ≈ \(exp(model.logitScale)))")
        }
    }

    func testImageOfTheWrongShapeIsATypedError() throws {
        let (model, _) = try load("tiny-quickgelu")
        XCTAssertThrowsError(try model.imageEmbeddings(Tensor(zeros: [1, 3, 31, 32]))) { error in
            XCTAssertEqual(error as? ModelInputError, .imageShape(found: [1, 3, 31, 32], expected: [1, 3, 32, 32]))
        }
        XCTAssertThrowsError(try model.textEmbeddings([[998, 5000, 999]])) { error in
            XCTAssertEqual(error as? ModelInputError, .tokenOutOfRange(id: 5000, vocabularySize: 1000))
        }
        XCTAssertThrowsError(try model.textEmbeddings([Array(repeating: 5, count: 77) + [999]])) { error in
            XCTAssertEqual(error as? ModelInputError, .sequenceTooLong(length: 78, maximum: 77))
        }
    }

    /// A checkpoint with a missing, extra or mis-shaped tensor fails with the full key.
    func testStrictLoadingNamesTheFullKey() throws {
        let source = Fixtures.url("clip/tiny-quickgelu")
        let original = try SafeTensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
        var tensors: [String: Tensor] = [:]
        for name in original.names { tensors[name] = try original.tensor(name) }

        func loadVariant(_ edit: (inout [String: Tensor]) -> Void) throws -> Error? {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clip-variant-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: directory.appendingPathComponent("config.json"))
            var edited = tensors
            edit(&edited)
            try SafeTensorsWriter.write(edited, to: directory.appendingPathComponent("model.safetensors"))
            do {
                _ = try CLIPModel(directory: directory)
                return nil
            } catch {
                return error
            }
        }

        let missingKey = "text_model.encoder.layers.1.mlp.fc2.weight"
        let missing = try loadVariant { $0[missingKey] = nil }
        XCTAssertEqual(missing as? WeightError, .missing(key: missingKey, expectedShape: [32, 64]))

        let extra = try loadVariant { $0["vision_model.encoder.layers.7.extra.weight"] = Tensor(zeros: [2]) }
        XCTAssertEqual(extra as? WeightError, .unused(keys: ["vision_model.encoder.layers.7.extra.weight": [2]]))

        let shapeKey = "vision_model.encoder.layers.0.self_attn.q_proj.weight"
        let misShaped = try loadVariant { $0[shapeKey] = Tensor(zeros: [48, 47]) }
        XCTAssertEqual(misShaped as? WeightError, .shapeMismatch(key: shapeKey, expected: [48, 48], found: [48, 47]))

        // Real checkpoints carry int64 position_ids buffers: accepted, not an error.
        let withBuffers = try loadVariant {
            $0["text_model.embeddings.position_ids"] = (0..<77).map { Int64($0) }.withUnsafeBytes { Tensor(shape: [1, 77], dtype: .i64, bytes: $0) }
        }
        XCTAssertNil(withBuffers)
    }
}

/// The prefix-cached text encoding equals full encoding.
final class CLIPPrefixCacheTests: XCTestCase {
    func testContinuationsOfACachedPrefixMatchFullEncoding() throws {
        for name in CLIPParityTests.checkpoints {
            let model = try CLIPModel(directory: Fixtures.url("clip/\(name)"))
            let config = model.configuration.textConfig
            let prefix = [998, 17, 250, 3, 641, 88, 12]
            // Continuations of every length up to the context, plus texts that do not
            // continue the prefix (full-encoding fallback) and the prefix itself + end.
            var candidates: [[Int]] = []
            for length in [1, 2, 3, 9, 40, 77 - prefix.count - 1] {
                for variant in 0..<3 {
                    let suffix = (0..<length).map { 1 + ($0 * 37 + variant * 101 + length * 7) % 990 }
                    candidates.append(prefix + suffix + [999] + [0, 0])
                }
            }
            candidates.append([998, 17, 250, 4, 5, 999])          // diverges inside the prefix
            candidates.append(prefix + [999])                      // nothing after the prefix
            candidates.append(Array((prefix + Array(repeating: 5, count: 80)).prefix(76)) + [999]) // truncated at 77
            let cache = try model.textModel.prefixCache(prefix)
            let cached = try model.textFeatures(candidates, continuing: cache).floats()
            let full = try model.textFeatures(candidates).floats()
            assertClose(cached, full, tolerance: 1e-5, "\(name): prefix-cached vs full features")
            XCTAssertEqual(config.pooledIndex(of: candidates[0]), prefix.count + 1)
        }
    }

    /// Candidates that share much after the prefix (as the chain's ", by …",
    /// ", trending on …" do), one a prefix of another, and exact duplicates: the
    /// token tree computes each shared token once and still equals full encoding.
    func testSharedContinuationsOfACachedPrefixMatchFullEncoding() throws {
        let model = try CLIPModel(directory: Fixtures.url("clip/tiny-quickgelu"))
        let prefix = [998, 17, 250, 3]
        let comma = 11, by = 40, trending = 41, on = 42
        let suffixes: [[Int]] = [
            [comma, by, 500], [comma, by, 500, 501], [comma, by, 502], [comma, trending, on, 600], [comma, trending, on, 601],
            [comma, trending, on, 600], [comma, 700], [comma], [comma, by, 500],
        ]
        let candidates = suffixes.map { prefix + $0 + [999] }
        let cache = try model.textModel.prefixCache(prefix)
        let (features, cost) = try model.textFeaturesAndCost(candidates, continuing: cache)
        assertClose(features.floats(), try model.textFeatures(candidates).floats(), tolerance: 1e-5, "tree vs full features")
        XCTAssertEqual(cost.texts, candidates.count)
        XCTAssertEqual(cost.tokens, candidates.map(\.count).reduce(0, +))
        let tree = TokenTree(suffixes.map { $0 + [999] })
        XCTAssertEqual(cost.tokensEncoded, prefix.count + tree.count, "the prefix once, then each tree node once")
        // ", " once; "by" → 500 (→ end, → 501 → end), 502 → end; "trending on" → 600 → end,
        // 601 → end; 700 → end; and the end right after ", ": 17 nodes for 37 tokens.
        XCTAssertEqual(tree.count, 17, "the distinct token paths after the prefix")
        XCTAssertEqual(tree.insertedTokens, 37)
    }

    /// A prefix cache started from another prompt's whole blocks equals a new
    /// one, bit for bit, whether the other prompt is shorter, longer or parts
    /// ways with it; only the positions after the blocks they share are run.
    func testAnExtendedPrefixCacheEqualsANewOne() throws {
        let text = try CLIPModel(directory: Fixtures.url("clip/tiny-quickgelu")).textModel
        let block = CLIPTextTransformer.prefixBlock
        let tokens = [998] + (1..<40).map { 1 + ($0 * 53) % 990 }
        func assertSame(_ a: CLIPTextPrefixCache, _ b: CLIPTextPrefixCache, _ message: String) {
            XCTAssertEqual(a.tokens, b.tokens, message)
            for layer in a.keys.indices {
                XCTAssertEqual(a.keys[layer].floats(), b.keys[layer].floats(), "\(message): keys of layer \(layer)")
                XCTAssertEqual(a.values[layer].floats(), b.values[layer].floats(), "\(message): values of layer \(layer)")
            }
        }
        for length in [1, 5, block, block + 1, 2 * block + 7, tokens.count] {
            let target = Array(tokens.prefix(length))
            let new = try text.prefixCacheAndWork(target, extending: nil)
            XCTAssertEqual(new.encoded, length)
            for baseLength in [3, block, block + 5, 2 * block, tokens.count] {
                let base = try text.prefixCache(Array(tokens.prefix(baseLength)))
                let extended = try text.prefixCacheAndWork(target, extending: base)
                assertSame(extended.cache, new.cache, "\(length) tokens from a base of \(baseLength)")
                XCTAssertEqual(extended.encoded, length - min(length, baseLength) / block * block, "\(length) from \(baseLength)")
            }
            // A base that parts ways after 13 tokens lends its first block only.
            var other = tokens
            other[13] = 5
            let parted = try text.prefixCacheAndWork(target, extending: text.prefixCache(other))
            assertSame(parted.cache, new.cache, "\(length) tokens from a base that parts ways")
            XCTAssertEqual(parted.encoded, length - min(length, 13) / block * block)
            // A base of another shape (another model's) is not used.
            let narrow = Tensor(zeros: [tokens.count, text.config.encoder.hiddenSize - 1])
            let foreign = CLIPTextPrefixCache(tokens: tokens, keys: text.layers.map { _ in narrow },
                                              values: text.layers.map { _ in narrow })
            let unused = try text.prefixCacheAndWork(target, extending: foreign)
            assertSame(unused.cache, new.cache, "\(length) tokens from a base of another shape")
            XCTAssertEqual(unused.encoded, length)
        }
    }

    /// The encoder keeps the last prefix's cache for the next texts that share
    /// it: going back and forth between two prefixes, each call equals a fresh
    /// encoder's, bit for bit (a stale cache would not), and a call that reuses
    /// the cache counts the prefix as not encoded.
    func testTheKeptPrefixCacheServesOnlyItsOwnPrefix() throws {
        let directory = Fixtures.url("interrogator/clip")
        let encoder = try CLIPEncoder(directory: directory)
        let prompts = ["a photo of a cat", "a painting of a dog"]
        var previous: String?
        for prompt in prompts + prompts.reversed() + prompts {
            let prefix = Array(encoder.tokenize(prompt).dropLast())
            let texts = ["sunset", "oil on canvas", "by greg rutkowski"].map { encoder.tokenize("\(prompt), \($0)") }
            let kept = try encoder.textEmbeddings(texts, sharingPrefix: prefix)
            let fresh = try CLIPEncoder(directory: directory).textEmbeddings(texts, sharingPrefix: prefix)
            XCTAssertEqual(kept.embeddings.floats(), fresh.embeddings.floats(), prompt)
            XCTAssertEqual(kept.cost.tokensEncoded, fresh.cost.tokensEncoded - (prompt == previous ? prefix.count : 0), prompt)
            XCTAssertEqual(kept.cost.tokens, fresh.cost.tokens, prompt)
            previous = prompt
        }
    }

    /// The tower's tree encoding (its layers taking turns between two scratch
    /// buffers) equals its layers' public tree API applied one after another,
    /// bit for bit.
    func testTreeEncodingEqualsItsLayersOneByOne() throws {
        let text = try CLIPModel(directory: Fixtures.url("clip/tiny-quickgelu")).textModel
        let prefix = [998, 17, 250, 3], width = text.config.encoder.hiddenSize
        let tree = TokenTree([[11, 40, 500, 999], [11, 40, 502, 999], [11, 999], [11, 41, 42, 600, 999]])
        let outputs = Array(Set(tree.ends)).sorted().map { Int32($0) }
        let cache = try text.prefixCache(prefix)
        var hidden = try Tensor(shape: [tree.count, width]) { out in
            try text.tokenEmbedding.lookup(out, tree.tokens)
            for (n, depth) in tree.depths.enumerated() {
                let position = text.positionEmbedding.row(prefix.count + Int(depth))
                for i in 0..<width { out[n * width + i] += position[i] }
            }
        }
        for (index, layer) in text.layers.enumerated() {
            hidden = layer(tree: hidden, tree, prefixKeys: cache.keys[index], prefixValues: cache.values[index],
                           outputs: index == text.layers.count - 1 ? outputs : nil)
        }
        let encoded = try text.encode(tree: tree, after: cache, outputs: outputs)
        XCTAssertEqual(encoded.shape, [outputs.count, width])
        XCTAssertEqual(encoded.floats(), hidden.floats())
    }
}

/// Token trees: shared starts become shared nodes, parents precede children.
final class TokenTreeTests: XCTestCase {
    func testSharedStartsShareNodes() {
        let tree = TokenTree([[1, 2, 3], [1, 2, 4], [1, 5], [1, 2, 3], [6], [1, 2]])
        XCTAssertEqual(tree.tokens, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(tree.parents, [-1, 0, 1, 1, 0, -1])
        XCTAssertEqual(tree.depths, [0, 1, 2, 2, 1, 0])
        XCTAssertEqual(tree.ends, [2, 3, 4, 2, 5, 1], "duplicates end on the same node; a prefix of another ends inside it")
        XCTAssertEqual(tree.insertedTokens, 14)
        XCTAssertEqual(tree.sharedTokens, 8)
        XCTAssertEqual(tree.maxDepth, 2)
    }
}

