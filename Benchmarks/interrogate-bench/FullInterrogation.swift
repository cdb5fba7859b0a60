import ClipInterrogator
import Foundation
import NeuralCore
import NeuralModels
import Synchronization

/// Stage 6: load time and peak memory of a whole interrogation from files on disk
/// (ViT-L/14 + BLIP-large with synthetic weights, F32 safetensors as the real
/// checkpoints ship, and label-embedding caches for all reference tables).
enum FullInterrogation {
    static let cacheModelName = "bench/ViT-L-14-synthetic"

    /// Writes both checkpoints and the label caches under `directory` (≈ 3.7 GB).
    static func writeCheckpoints(to directory: URL) throws {
        let manager = FileManager.default
        let clipDirectory = directory.appendingPathComponent("clip"), blipDirectory = directory.appendingPathComponent("blip")
        for folder in [clipDirectory, blipDirectory] { try manager.createDirectory(at: folder, withIntermediateDirectories: true) }

        let clipWeights = SyntheticWeights(seed: 1)
        let clipConfiguration = try JSONDecoder().decode(CLIPConfiguration.self, from: Data(BenchmarkModels.vitL14.utf8))
        let clip = try CLIPModel(configuration: clipConfiguration, weights: WeightStore(source: clipWeights))
        try SafeTensorsWriter.write(clipWeights.synthesized, metadata: ["format": "pt"], to: clipDirectory.appendingPathComponent("model.safetensors"))
        try Data(BenchmarkModels.vitL14.utf8).write(to: clipDirectory.appendingPathComponent("config.json"))
        for file in ["vocab.json", "merges.txt"] {
            try? manager.removeItem(at: clipDirectory.appendingPathComponent(file))
            try manager.copyItem(at: TextStages.root.appendingPathComponent("Tests/Fixtures/clip-tokenizer/\(file)"),
                                 to: clipDirectory.appendingPathComponent(file))
        }

        let blipWeights = SyntheticWeights(seed: 2)
        let blipConfiguration = try JSONDecoder().decode(BlipConfiguration.self, from: Data(BlipStage.blipLarge.utf8))
        _ = try BlipForConditionalGeneration(WeightScope(WeightStore(source: blipWeights)), configuration: blipConfiguration)
        // The tied LM-head weight is not stored, as in the real checkpoint.
        var blipTensors = blipWeights.synthesized
        blipTensors["text_decoder.cls.predictions.decoder.weight"] = nil
        try SafeTensorsWriter.write(blipTensors, metadata: ["format": "pt"], to: blipDirectory.appendingPathComponent("model.safetensors"))
        try Data(BlipStage.blipLarge.utf8).write(to: blipDirectory.appendingPathComponent("config.json"))
        for file in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try? manager.removeItem(at: blipDirectory.appendingPathComponent(file))
            try manager.copyItem(at: TextStages.root.appendingPathComponent("Tests/Fixtures/blip/tiny-base/\(file)"),
                                 to: blipDirectory.appendingPathComponent(file))
        }
        let preprocessor = #"{"image_processor_type": "BlipImageProcessor", "size": {"height": 384, "width": 384}, "resample": 3, "do_resize": true, "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}"#
        try Data(preprocessor.utf8).write(to: blipDirectory.appendingPathComponent("preprocessor_config.json"))

        // Label caches with random unit embeddings (embedding 111,867 labels with
        // ViT-L/14 is not what this stage measures).
        let cache = LabelEmbeddingCache(directory: directory.appendingPathComponent("cache"), modelName: cacheModelName)
        let tables: [(String, [String])] = [
            ("artists", ReferenceLabels.artists(from: try ReferenceLabels.list(.artists))), ("flavors", try ReferenceLabels.list(.flavors)),
            ("mediums", try ReferenceLabels.list(.mediums)), ("movements", try ReferenceLabels.list(.movements)),
            ("trendings", ReferenceLabels.trendings), ("negative", try ReferenceLabels.list(.negative)),
        ]
        let d = clip.embeddingDimension
        for (index, (name, labels)) in tables.enumerated() {
            var random = SyntheticWeights(seed: UInt64(10 + index)).tensor(shape: [labels.count, d])
            random.withUnsafeMutableFloats { l2NormalizeRows($0.baseAddress!, rows: labels.count, cols: d) }
            try cache.store(table: name, labels: labels, embeddings: random)
        }
    }

    struct Report: Codable {
        var checkpointBytes: Int
        var loadSeconds: Double
        var interrogateSeconds: Double
        var peakResidentMB: Double
        var peakOverCheckpoints: Double
        var mode: String
        /// The other modes asked for (`--modes`), after the fast one.
        var modes: [ModeReport] = []
    }

    /// One mode's whole interrogation of the image, the chain fixed at 16 steps.
    struct ModeReport: Codable {
        var mode: String
        /// Everything: caption, image embedding, rankings, chain, final choice.
        var seconds: Double
        /// The caption alone (up to 32 tokens, as `caption_max_length`).
        var captionSeconds: Double
        var captionTokens: Int
        /// Chain steps run and their seconds (each from the previous report).
        var chainSteps: Int
        var chainStepSeconds: [Double]
        /// Texts scored, their tokens, and the token positions actually encoded.
        var chainTexts: Int
        var chainTokens: Int
        var chainTokensEncoded: Int
        /// `seconds` with the chain's mean step time times 16 in place of the chain,
        /// when the prompt filled CLIP's context before 16 steps.
        var sixteenStepSeconds: Double
    }

    /// The benchmark image: 640×480 bytes `i &* 2654435761 >> 13`.
    static func image() -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: 640 * 480 * 3)
        for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        return RGBImage(width: 640, height: 480, pixels: pixels)
    }

    /// Loads everything from `directory` and interrogates one image in fast mode,
    /// then in each of `modes`; run in a fresh process so the peak RSS is this
    /// work's alone.
    static func run(directory: URL, modes: [InterrogationMode] = []) throws -> Report {
        let start = Date()
        var configuration = InterrogatorConfiguration(encoderName: cacheModelName)
        configuration.cacheDirectory = directory.appendingPathComponent("cache")
        let steps = Mutex<[(Date, TextEncodingCost)]>([])
        let captionTokens = Atomic<Int>(0)
        configuration.progress = { event in
            switch event {
            case let .chainStep(_, _, _, cost): steps.withLock { $0.append((Date(), cost)) }
            case let .captioning(token, _): captionTokens.store(token, ordering: .relaxed)
            default: break
            }
        }
        let interrogator = try Interrogator.load(clipDirectory: directory.appendingPathComponent("clip"),
                                                 captionDirectory: directory.appendingPathComponent("blip"), configuration: configuration)
        let loaded = Date()
        let image = image()
        _ = try interrogator.interrogate([image], mode: .fast)
        let done = Date()
        let bytes = try ["clip", "blip"].map {
            try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("\($0)/model.safetensors").path)[.size] as? Int ?? 0
        }.reduce(0, +)
        var report = Report(checkpointBytes: bytes, loadSeconds: loaded.timeIntervalSince(start),
                            interrogateSeconds: done.timeIntervalSince(loaded), peakResidentMB: 0,
                            peakOverCheckpoints: 0, mode: "fast")
        for mode in modes {
            // The random BLIP's caption is up to 32 tokens of noise, which would fill
            // CLIP's context after a few flavors: it is generated and timed, then the
            // rest of the mode runs on a short subject so that the chain can take its
            // 16 steps, as a real caption lets it.
            let captionStart = Date()
            _ = try interrogator.caption(image)
            let captionSeconds = Date().timeIntervalSince(captionStart)
            var options = InterrogationOptions()
            options.subject = "a painting of a lighthouse on a rocky coast"
            (options.minFlavors, options.maxFlavors) = (16, 16)
            steps.withLock { $0 = [] }
            let modeStart = Date()
            _ = try interrogator.interrogate([image], mode: mode, options: options)
            let rest = Date().timeIntervalSince(modeStart)
            let recorded = steps.withLock { $0 }
            var previous = modeStart
            var stepSeconds: [Double] = []
            for (time, _) in recorded { stepSeconds.append(time.timeIntervalSince(previous)); previous = time }
            // The first step's interval also holds the rankings before the chain.
            let cost = recorded.map(\.1).reduce(TextEncodingCost(), +)
            let chainSeconds = stepSeconds.reduce(0, +)
            let mean = stepSeconds.isEmpty ? 0 : chainSeconds / Double(stepSeconds.count)
            report.modes.append(ModeReport(
                mode: mode.rawValue, seconds: captionSeconds + rest, captionSeconds: captionSeconds,
                captionTokens: captionTokens.load(ordering: .relaxed),
                chainSteps: recorded.count, chainStepSeconds: stepSeconds, chainTexts: cost.texts, chainTokens: cost.tokens,
                chainTokensEncoded: cost.tokensEncoded,
                sixteenStepSeconds: captionSeconds + rest + (recorded.count < 16 ? mean * Double(16 - recorded.count) : 0)))
        }
        report.peakResidentMB = peakResidentMegabytes()
        report.peakOverCheckpoints = report.peakResidentMB * 1_048_576 / Double(bytes)
        return report
    }
}
