import Foundation
import NeuralCore
import NeuralModels
import TestSupport
import XCTest

/// BLIP captioning against transformers 5.24 on two tiny random
/// `BlipForConditionalGeneration` checkpoints in the exact Hugging Face format
/// (Tests/Fixtures/blip, written by Weights/fixtures/make_blip_fixtures.py):
/// `tiny-base` (vision width = text width, F32) and `tiny-large` (vision width 48
/// ≠ text width, F16 weights). Activations within 1e-4; generated ids identical.
final class BLIPTests: XCTestCase {
    static let checkpoints = ["tiny-base", "tiny-large"]

    struct Golden {
        let file: SafeTensorsFile
        let json: [String: Any]

        func tensor(_ key: String) throws -> Tensor { try file.tensor(key) }
        func floats(_ key: String) throws -> [Float] { try file.tensor(key).floats() }
        func integers(_ key: String) throws -> [Int] { try file.tensor(key).integers().map { Int($0) } }

        /// Rows of an `[N, L]` id tensor, each cut to `lengths[n]` when given.
        func idRows(_ key: String, lengths: [Int]? = nil) throws -> [[Int]] {
            let t = try file.tensor(key)
            let flat = t.integers().map { Int($0) }
            let width = t.shape[1]
            return (0..<t.shape[0]).map { n in
                Array(flat[(n * width)..<(n * width + (lengths?[n] ?? width))])
            }
        }

        var cases: [String: [String: Any]] { json["cases"] as! [String: [String: Any]] }
    }

    func directory(_ name: String) -> URL { Fixtures.url("blip/\(name)") }

    func load(_ name: String) throws -> (BlipCaptioner, Golden) {
        let dir = directory(name)
        let captioner = try BlipCaptioner(directory: dir)
        let file = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("golden.safetensors"))
        let data = try Data(contentsOf: dir.appendingPathComponent("golden.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (captioner, Golden(file: file, json: json))
    }

    /// Image `i` of a `[N, 3, S, S]` batch as a batch of one.
    func image(_ pixels: Tensor, _ i: Int) -> Tensor {
        let size = pixels.count / pixels.shape[0]
        return Tensor(shape: [1] + Array(pixels.shape.dropFirst()), scalars: Array(pixels.floats()[(i * size)..<((i + 1) * size)]))
    }

    /// `generate(**kwargs)` arguments as options (transformers' defaults for absent keys).
    func options(_ kwargs: [String: Any]) throws -> GenerationOptions {
        var options = GenerationOptions(maxNewTokens: nil)
        for (key, value) in kwargs {
            switch key {
            case "max_new_tokens": options.maxNewTokens = value as? Int
            case "max_length": options.maxLength = value as? Int
            case "min_length": options.minLength = try XCTUnwrap(value as? Int)
            case "min_new_tokens": options.minNewTokens = value as? Int
            case "num_beams": options.numBeams = try XCTUnwrap(value as? Int)
            case "length_penalty": options.lengthPenalty = try XCTUnwrap(value as? Double)
            case "repetition_penalty": options.repetitionPenalty = try XCTUnwrap(value as? Double)
            case "no_repeat_ngram_size": options.noRepeatNgramSize = try XCTUnwrap(value as? Int)
            case "early_stopping":
                if let flag = value as? Bool { options.earlyStopping = flag ? .whenFull : .heuristic } else { options.earlyStopping = .never }
            default: XCTFail("generate kwarg \(key) not mapped")
            }
        }
        return options
    }

    /// Generation through the ``IncrementalDecoder`` entry points, generic over
    /// the decoder: what `BlipForConditionalGeneration.generate` runs.
    func generateThroughProtocol<D: IncrementalDecoder>(_ decoder: D, context: D.Context, prompt: [Int],
                                                        options: GenerationOptions) throws -> [[Int]] {
        var trace = GenerationTrace()
        return try decoder.generate(context: context, plan: decoder.plan(prompt: prompt, options: options), trace: &trace)
    }

    // MARK: Configuration

    func testConfigurationTokenIdsAndWidthsComeFromConfigJSON() throws {
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let config = captioner.model.configuration
            XCTAssertEqual(config.textConfig.bosTokenId, 30522, name)
            XCTAssertEqual(config.textConfig.sepTokenId, 102, name)
            XCTAssertEqual(config.textConfig.padTokenId, 0, name)
            XCTAssertEqual(config.textConfig.eosTokenIds, [2], name)
            XCTAssertEqual(config.textConfig.vocabSize, 30524, name)
            XCTAssertEqual(config.textConfig.bert.encoderHiddenSize, config.visionConfig.hiddenSize, name)
            XCTAssertEqual(captioner.model.defaultPrompt, [30522])
            // The decoder prompt BLIP's generate derives from the processor's ids.
            XCTAssertEqual(try captioner.decoderPrompt("a picture of"), try golden.integers("prefix.decoder_prompt_ids"), name)
            // The settings transformers' generate ran with (recorded by the fixture script).
            for (caseName, entry) in golden.cases {
                guard let recorded = entry["generation_config"] as? [String: Any] else { continue }
                XCTAssertEqual(recorded["eos_token_id"] as? Int, config.textConfig.sepTokenId, "\(name) \(caseName) eos")
                XCTAssertEqual(recorded["pad_token_id"] as? Int, config.textConfig.padTokenId, "\(name) \(caseName) pad")
                XCTAssertEqual(recorded["do_sample"] as? Bool, false, "\(name) \(caseName) do_sample")
                XCTAssertEqual(recorded["length_penalty"] as? Double, 1.0, "\(name) \(caseName) length_penalty")
                XCTAssertEqual(recorded["early_stopping"] as? Bool, false, "\(name) \(caseName) early_stopping")
            }
        }
        XCTAssertEqual(try load("tiny-large").0.model.configuration.visionConfig.hiddenSize, 48)
        // Absent keys take transformers' BlipConfig defaults.
        let defaults = try JSONDecoder().decode(BlipConfiguration.self, from: Data("{}".utf8))
        XCTAssertEqual(defaults.textConfig.bert.numAttentionHeads, 8)
        XCTAssertEqual(defaults.textConfig.bosTokenId, 30522)
        XCTAssertEqual(defaults.visionConfig.imageSize, 384)
        XCTAssertEqual(defaults.visionConfig.layerNormEps, 1e-5)
        XCTAssertEqual(defaults.textConfig.bert.layerNormEps, 1e-12)
        let nullBos = try JSONDecoder().decode(BlipConfiguration.self, from: Data(#"{"text_config": {"bos_token_id": null, "eos_token_id": [5, 6]}}"#.utf8))
        XCTAssertNil(nullBos.textConfig.bosTokenId)
        XCTAssertEqual(nullBos.textConfig.eosTokenIds, [5, 6])
    }

    // MARK: Vision tower

    func testVisionHiddenStatesAndImageEmbeds() throws {
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let vision = captioner.model.visionModel
            let (imageEmbeds, all) = try vision.encode(try golden.tensor("pixel_values"), allHiddenStates: true)
            XCTAssertEqual(all.count, vision.config.numHiddenLayers + 1)
            for (i, state) in all.enumerated() {
                assertClose(state.floats(), try golden.floats("vision_hidden_states.\(i)"), tolerance: 1e-4, "\(name) vision hidden state \(i)")
            }
            assertClose(imageEmbeds.floats(), try golden.floats("vision_last_hidden_state"), tolerance: 1e-4, "\(name) image embeds")
        }
    }

    // MARK: Text decoder

    func testTeacherForcedDecoderHiddenStatesAndLogits() throws {
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let decoder = captioner.model.textDecoder
            let ids = try golden.idRows("decoder.input_ids")
            let embeds = try golden.tensor("vision_last_hidden_state")
            let first = image(embeds, 0)
            let (hidden, logits) = try decoder(ids, imageEmbeds: first)
            XCTAssertEqual(hidden.count, decoder.config.bert.numHiddenLayers + 1)
            for (i, state) in hidden.enumerated() {
                assertClose(state.floats(), try golden.floats("decoder.hidden_states.\(i)"), tolerance: 1e-4, "\(name) decoder hidden state \(i)")
            }
            assertClose(decoder.head.transform(hidden.last!).floats(), try golden.floats("decoder.transform"), tolerance: 1e-4, "\(name) LM transform")
            let vocab = decoder.config.vocabSize, tokens = ids[0].count
            let all = logits.floats()
            XCTAssertEqual(logits.shape, [1, tokens, vocab])
            assertClose(Array(all.suffix(vocab)), try golden.floats("decoder.logits_last"), tolerance: 1e-4, "\(name) last logits")
            let maxima = (0..<tokens).map { t in all[(t * vocab)..<((t + 1) * vocab)].max()! }
            let argmaxes = (0..<tokens).map { t in all[(t * vocab)..<((t + 1) * vocab)].indices.max { all[$0] < all[$1] }! - t * vocab }
            assertClose(maxima, try golden.floats("decoder.logits_max"), tolerance: 1e-4, "\(name) logits max")
            XCTAssertEqual(argmaxes, try golden.integers("decoder.logits_argmax"), "\(name) logits argmax")

            // Token-by-token decoding through the KV cache gives the same logits.
            let context = decoder.imageContext(first)
            var state = decoder.makeState(context: context, inputOfRow: [0], capacity: 2) // grows as needed
            var stepped: [Float] = []
            for t in 0..<tokens {
                XCTAssertEqual(state.length, t)
                stepped += try decoder.nextTokenLogits([[ids[0][t]]], state: &state).floats()
            }
            XCTAssertEqual(state.processedPositions, tokens)
            assertClose(stepped, all, tolerance: 1e-4, "\(name) cached vs full logits")
        }
    }

    // MARK: Generation

    func testGeneratedIdsAndCaptionsMatchTransformersOneImageAtATime() throws {
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let pixels = try golden.tensor("pixel_values")
            let expectedCases = ["beam3", "beam8", "greedy", "no_repeat_ngram", "prefix", "repetition_penalty"]
            XCTAssertEqual(Set(expectedCases).subtracting(golden.cases.keys), [], "\(name): golden cases")
            for caseName in golden.cases.keys.sorted() where caseName != "greedy_batch" {
                let entry = golden.cases[caseName]!
                let options = try options(entry["generate_kwargs"] as! [String: Any])
                let prompt = entry["text"] as? String
                let expected = try golden.idRows("\(caseName).ids", lengths: try golden.integers("\(caseName).lengths"))
                XCTAssertEqual(expected, entry["ids"] as? [[Int]], "\(name) \(caseName): golden json vs safetensors")
                let expectedCaptions = try XCTUnwrap(entry["captions"] as? [String])
                for i in 0..<pixels.shape[0] {
                    let ids = try captioner.generate(pixelValues: image(pixels, i), prompt: prompt, options: options)
                    XCTAssertEqual(ids, [expected[i]], "\(name) \(caseName) image \(i)")
                    XCTAssertEqual(captioner.decode(ids[0]), expectedCaptions[i], "\(name) \(caseName) image \(i) caption")
                }
            }
        }
    }

    func testDefaultCaptionIsTheReferenceCall() throws {
        // clip-interrogator: generate(**inputs, max_new_tokens=32), decode, strip.
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let pixels = try golden.tensor("pixel_values")
            XCTAssertEqual(try options(golden.cases["greedy"]!["generate_kwargs"] as! [String: Any]), GenerationOptions())
            let captions = try captioner.caption(pixelValues: pixels)
            XCTAssertEqual(captions, golden.cases["greedy"]!["captions"] as? [String], name)
        }
        // At least one golden caption starts with a '##' piece, decoded as transformers does.
        let all = try Self.checkpoints.flatMap { try load($0).1.cases["greedy"]!["captions"] as! [String] }
        XCTAssertTrue(all.contains { $0.hasPrefix("##") }, "\(all)")
    }

    func testBatchOfFourMatchesTransformersAndOneByOne() throws {
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let pixels = try golden.tensor("pixel_values")
            // Greedy: transformers' batch output, finished rows padded with pad_token_id.
            let batch = try captioner.generate(pixelValues: pixels)
            XCTAssertEqual(batch, try golden.idRows("greedy_batch.ids"), "\(name) greedy batch of 4")
            // Every case: each row of the batch is the one-image result, padded with
            // transformers' fill (greedy: pad id; beam search: `pad or eos` = [SEP] for pad 0),
            // here through the generic search over the decoder.
            let decoder = captioner.model.textDecoder
            let context = decoder.imageContext(try captioner.model.visionModel.encode(pixels).imageEmbeds)
            for caseName in golden.cases.keys.sorted() where caseName != "greedy_batch" {
                let entry = golden.cases[caseName]!
                let options = try options(entry["generate_kwargs"] as! [String: Any])
                let single = try golden.idRows("\(caseName).ids", lengths: try golden.integers("\(caseName).lengths"))
                let rows = try generateThroughProtocol(decoder, context: context, prompt: captioner.decoderPrompt(entry["text"] as? String),
                                                       options: options)
                let width = single.map(\.count).max()!
                let fill = options.numBeams > 1 ? 102 : 0
                XCTAssertEqual(rows, single.map { $0 + Array(repeating: fill, count: width - $0.count) }, "\(name) \(caseName) batch of 4")
                XCTAssertEqual(try captioner.caption(pixelValues: pixels, prompt: entry["text"] as? String, options: options),
                               entry["captions"] as? [String], "\(name) \(caseName) batch captions")
            }
        }
    }

    /// A decoding step gives each sequence the same logits, bit for bit, whatever
    /// is decoded beside it: 12 sequences (more rows than the skinny kernel takes,
    /// so the step's products would otherwise go through the BLAS, which sums
    /// rows in other ways than one row alone) against each sequence alone, for a
    /// 3-token prompt (36 rows) and the step after it.
    func testEachSequenceOfALargeBatchDecodesAsAlone() throws {
        for name in Self.checkpoints {
            let (captioner, golden) = try load(name)
            let decoder = captioner.model.textDecoder
            let context = decoder.imageContext(try captioner.model.visionModel.encode(golden.tensor("pixel_values")).imageEmbeds)
            let (rows, vocab) = (12, decoder.vocabSize)
            let imageOfRow = (0..<rows).map { $0 % context.inputCount }
            let prompts = (0..<rows).map { r in (0..<3).map { (r * 131 + $0 * 17 + 5) % vocab } }
            let next = (0..<rows).map { (r: Int) in (r * 37 + 11) % vocab }
            var together = decoder.makeState(context: context, inputOfRow: imageOfRow, capacity: 4)
            let first = try decoder.nextTokenLogits(prompts, state: &together).floats().map(\.bitPattern)
            let second = try decoder.nextTokenLogits(next.map { [$0] }, state: &together).floats().map(\.bitPattern)
            for r in 0..<rows {
                var alone = decoder.makeState(context: context, inputOfRow: [imageOfRow[r]], capacity: 4)
                let firstAlone = try decoder.nextTokenLogits([prompts[r]], state: &alone).floats().map(\.bitPattern)
                let secondAlone = try decoder.nextTokenLogits([[next[r]]], state: &alone).floats().map(\.bitPattern)
                let range = (r * vocab)..<((r + 1) * vocab)
                XCTAssertEqual(zip(firstAlone, first[range]).filter { $0 != $1 }.count, 0, "\(name) sequence \(r), prompt step: logits that differ")
                XCTAssertEqual(zip(secondAlone, second[range]).filter { $0 != $1 }.count, 0, "\(name) sequence \(r), next step: logits that differ")
            }
        }
    }

    /// The KV cache is in use: after the first decoder call (the prompt), every
    /// call feeds exactly one new token per live sequence or beam.
    func testEachStepAfterThePromptProcessesOnlyTheNewTokens() throws {
        let (captioner, golden) = try load("tiny-base")
        let model = captioner.model
        let pixels = try golden.tensor("pixel_values")
        let prompt = try captioner.decoderPrompt("a picture of")

        // Greedy, batch of 4: live rows shrink as captions end.
        var trace = GenerationTrace()
        let ids = try model.generate(pixelValues: pixels, decoderPrompt: prompt, options: GenerationOptions(), trace: &trace)
        let length = ids[0].count
        XCTAssertEqual(trace.steps.count, length - prompt.count, "one decoder call per generated position")
        XCTAssertEqual(trace.steps[0], .init(rows: 4, positions: 4 * prompt.count))
        for (k, step) in trace.steps.enumerated().dropFirst() {
            // Sequences still unfinished before position prompt + k.
            let live = ids.filter { !$0[prompt.count..<(prompt.count + k)].contains(102) }.count
            XCTAssertEqual(step, .init(rows: live, positions: live), "step \(k)")
        }
        XCTAssertEqual(trace.totalPositions, 4 * prompt.count + trace.steps.dropFirst().reduce(0) { $0 + $1.rows })

        // Beam search: the prompt once per image, then one token per beam.
        for beams in [3, 8] {
            var beamTrace = GenerationTrace()
            let one = image(pixels, 0)
            _ = try model.generate(pixelValues: one, options: GenerationOptions(minLength: 5, numBeams: beams), trace: &beamTrace)
            XCTAssertEqual(beamTrace.steps[0], .init(rows: 1, positions: 1))
            XCTAssertGreaterThan(beamTrace.steps.count, 4)
            for step in beamTrace.steps.dropFirst() { XCTAssertEqual(step, .init(rows: beams, positions: beams)) }
        }

        // The decoder state counts the same work.
        let decoder = model.textDecoder
        let context = decoder.imageContext(try model.visionModel.encode(pixels).imageEmbeds)
        var state = decoder.makeState(context: context, inputOfRow: [0, 1, 2, 3], capacity: 8)
        _ = try decoder.nextTokenLogits(Array(repeating: prompt, count: 4), state: &state)
        XCTAssertEqual(state.processedPositions, 16)
        state.selectRows([2, 2, 0])
        XCTAssertEqual(state.imageOfRow, [2, 2, 0])
        _ = try decoder.nextTokenLogits([[1037], [1037], [1037]], state: &state)
        XCTAssertEqual(state.processedPositions, 19)
        XCTAssertEqual(state.length, prompt.count + 1)
    }

    /// `min_length` counts the prompt; `min_new_tokens` does not (it becomes
    /// `min_length = prompt + min_new_tokens`, as `_prepare_generated_length` does).
    func testMinimumLengthsCountThePromptOrOnlyNewTokens() throws {
        let (captioner, golden) = try load("tiny-base")
        let one = image(try golden.tensor("pixel_values"), 1) // greedy: [bos, x, y, SEP]
        let greedy = try captioner.generate(pixelValues: one)[0]
        XCTAssertEqual(greedy.count, 4)
        let promptless = try captioner.generate(pixelValues: one, options: GenerationOptions(minLength: 7))[0]
        XCTAssertFalse(promptless.prefix(7).contains(102), "[SEP] banned while fewer than 7 ids, bos included")
        XCTAssertNotEqual(promptless, greedy)
        XCTAssertEqual(try captioner.generate(pixelValues: one, options: GenerationOptions(minNewTokens: 6))[0], promptless)
        let prompt = try captioner.decoderPrompt("a picture of")
        let withPrompt = try captioner.generate(pixelValues: one, prompt: "a picture of", options: GenerationOptions(minNewTokens: 6))[0]
        XCTAssertFalse(withPrompt.prefix(prompt.count + 6).contains(102))
        XCTAssertEqual(try captioner.generate(pixelValues: one, prompt: "a picture of", options: GenerationOptions(minLength: prompt.count + 6))[0],
                       withPrompt)
    }

    /// Reordered/duplicated cache rows behave exactly like freshly decoded sequences.
    func testCacheRowSelectionMatchesRecomputation() throws {
        let (captioner, golden) = try load("tiny-large")
        let decoder = captioner.model.textDecoder
        let embeds = try golden.tensor("vision_last_hidden_state")
        let context = decoder.imageContext(embeds)
        var state = decoder.makeState(context: context, inputOfRow: [0, 1, 2, 3], capacity: 3)
        let prompts = [[30522, 1037], [30522, 2158], [30522, 3899], [30522, 4937]]
        _ = try decoder.nextTokenLogits(prompts, state: &state)
        state.selectRows([3, 1, 1])
        let cached = try decoder.nextTokenLogits([[2003], [2003], [1999]], state: &state).floats()
        var fresh = decoder.makeState(context: context, inputOfRow: [3, 1, 1], capacity: 3)
        let full = try decoder.nextTokenLogits([prompts[3] + [2003], prompts[1] + [2003], prompts[1] + [1999]], state: &fresh).floats()
        // The same sums in another order: one new token per row runs in the skinny-product kernel, the full
        // sequences in the BLAS; logits of magnitude ~7 agree to a few 1e-6 relative.
        assertClose(cached, full, tolerance: 2e-5, "selected cache rows vs recomputation")
    }

    /// Caption decoding as `batch_decode(skip_special_tokens=True)[0].strip()`:
    /// a leading `##` piece, ids the tokenizer lacks ([DEC], [ENC]), special tokens.
    func testCaptionDecodingMatchesTransformers() throws {
        let (captioner, _) = try load("tiny-base")
        let data = try Data(contentsOf: Fixtures.url("blip/decode.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(json["cases"] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty)
        for entry in cases {
            let ids = try XCTUnwrap(entry["ids"] as? [Int])
            XCTAssertEqual(captioner.decode(ids), entry["caption"] as? String, "\(ids)")
        }
    }

    // MARK: Loading

    /// A checkpoint with a missing, unknown or mis-shaped tensor fails with the full
    /// key; position_ids buffers and the tied LM-head copies load.
    func testStrictLoading() throws {
        let source = directory("tiny-large")
        let original = try SafeTensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
        var tensors: [String: Tensor] = [:]
        for name in original.names { tensors[name] = try original.tensor(name) }
        XCTAssertNil(tensors["text_decoder.cls.predictions.decoder.weight"], "tied weight absent from the file")
        XCTAssertTrue(tensors.keys.allSatisfy { $0.hasPrefix("vision_model.") || $0.hasPrefix("text_decoder.") })

        func loadVariant(_ edit: (inout [String: Tensor]) -> Void) throws -> (model: BlipForConditionalGeneration?, error: Error?) {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blip-variant-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
            var edited = tensors
            edit(&edited)
            try SafeTensorsWriter.write(edited, to: dir.appendingPathComponent("model.safetensors"))
            do {
                return (try BlipForConditionalGeneration(directory: dir), nil)
            } catch {
                return (nil, error)
            }
        }

        let missingKey = "text_decoder.bert.encoder.layer.1.crossattention.self.key.weight"
        XCTAssertEqual(try loadVariant { $0[missingKey] = nil }.error as? WeightError,
                       .missing(key: missingKey, expectedShape: [16, 48]))
        let visionKey = "vision_model.encoder.layers.2.self_attn.qkv.bias"
        XCTAssertEqual(try loadVariant { $0[visionKey] = nil }.error as? WeightError,
                       .missing(key: visionKey, expectedShape: [144]))
        let biasKey = "text_decoder.cls.predictions.bias"
        XCTAssertEqual(try loadVariant { $0[biasKey] = nil }.error as? WeightError,
                       .missing(key: biasKey, expectedShape: [30524]))

        let unknown = "text_decoder.bert.pooler.dense.weight"
        XCTAssertEqual(try loadVariant { $0[unknown] = Tensor(zeros: [16, 16]) }.error as? WeightError,
                       .unused(keys: [unknown: [16, 16]]))
        XCTAssertEqual(try loadVariant { $0["text_encoder.embeddings.word_embeddings.weight"] = Tensor(zeros: [4, 2]) }.error as? WeightError,
                       .unused(keys: ["text_encoder.embeddings.word_embeddings.weight": [4, 2]]))

        let shapeKey = "vision_model.embeddings.class_embedding"
        XCTAssertEqual(try loadVariant { $0[shapeKey] = Tensor(zeros: [48]) }.error as? WeightError,
                       .shapeMismatch(key: shapeKey, expected: [1, 1, 48], found: [48]))

        // Buffers and the tied copies a real checkpoint may carry are accepted, and
        // the LM head's bias may come from `decoder.bias` alone.
        let withExtras = try loadVariant {
            $0["text_decoder.bert.embeddings.position_ids"] = (0..<512).map { Int64($0) }.withUnsafeBytes { Tensor(shape: [1, 512], dtype: .i64, bytes: $0) }
            $0["text_decoder.cls.predictions.decoder.weight"] = $0["text_decoder.bert.embeddings.word_embeddings.weight"]
            $0["text_decoder.cls.predictions.decoder.bias"] = $0[biasKey]
        }
        XCTAssertNil(withExtras.error)
        let onlyDecoderBias = try loadVariant {
            $0["text_decoder.cls.predictions.decoder.bias"] = $0[biasKey]
            $0[biasKey] = nil
        }
        XCTAssertNil(onlyDecoderBias.error)
        XCTAssertEqual(onlyDecoderBias.model?.textDecoder.head.bias.floats(), tensors[biasKey]!.floats())
    }

    func testInvalidInputsAreTypedErrors() throws {
        let (captioner, _) = try load("tiny-base")
        XCTAssertThrowsError(try captioner.generate(pixelValues: Tensor(zeros: [1, 3, 31, 32]))) { error in
            XCTAssertEqual(error as? ModelInputError, .imageShape(found: [1, 3, 31, 32], expected: [1, 3, 32, 32]))
        }
        XCTAssertThrowsError(try captioner.generate(pixelValues: Tensor(zeros: [1, 3, 32, 32]), options: GenerationOptions(numBeams: 0))) { error in
            XCTAssertTrue(error is GenerationError)
        }
        // Positions past the table: a clear error, not a crash.
        let long = GenerationOptions(maxNewTokens: 600, minNewTokens: 600)
        XCTAssertThrowsError(try captioner.generate(pixelValues: Tensor(zeros: [1, 3, 32, 32]), options: long)) { error in
            XCTAssertEqual(error as? ModelInputError, .sequenceTooLong(length: 513, maximum: 512))
        }
    }
}
