import ClipInterrogator
import Foundation
import NeuralCore
import NeuralModels
import Synchronization

/// Turbo mode against exact best mode on two evaluation sets (the issue's
/// quality measurement): (a) the demo pair's 100 held-out images, (b) a tiny
/// random-weight CLIP in the Hugging Face layout with the reference's full label
/// lists (so the chain's candidate pool is the real 2,048-wide one) on 40 images.
/// Both modes get the same caption (the demo's BLIP caption, or a fixed subject),
/// so the comparison and the time ratio are about the chain alone.
enum TurboQuality {
    struct Row: Codable {
        var set: String
        var settings: String
        var images: Int
        /// turbo similarity / best similarity, mean and worst.
        var meanRatio: Double
        var worstRatio: Double
        /// Images whose turbo prompt equals the best prompt.
        var identical: Int
        /// Mean share of best's flavors that turbo's prompt also has.
        var flavorsInCommon: Double
        /// Images where turbo's similarity is below fast mode's (must be 0).
        var belowFast: Int
        var bestSeconds: Double
        var turboSeconds: Double
        var timeRatio: Double { turboSeconds / bestSeconds }
        /// Token positions the chains ran through the text tower, best and turbo.
        var bestTokens: Int
        var turboTokens: Int
        var workRatio: Double { Double(turboTokens) / Double(max(bestTokens, 1)) }
    }

    /// Adds up the chains' encoding cost from progress reports.
    final class CostCounter: Sendable {
        private let total = Mutex(TextEncodingCost())
        var value: TextEncodingCost { total.withLock { $0 } }
        func reset() { total.withLock { $0 = TextEncodingCost() } }
        func record(_ event: InterrogatorProgress) {
            if case let .chainStep(_, _, _, cost) = event { total.withLock { $0 = $0 + cost } }
        }
    }

    static func run(settings: [TurboSettings]) throws -> [Row] {
        let root = TextStages.root
        let counter = CostCounter()
        // (a) The demo pair.
        var demoConfiguration = try DemoModel.configuration()
        demoConfiguration.progress = { counter.record($0) }
        let demo = try DemoModel.interrogator(configuration: demoConfiguration)
        let heldout = root.appendingPathComponent("Tests/Fixtures/demo/heldout")
        let demoImages = try FileManager.default.contentsOfDirectory(atPath: heldout.path).filter { $0.hasSuffix(".png") }.sorted()
            .map { try ImageDecoder.decode(contentsOf: heldout.appendingPathComponent($0)) }
        let demoCaptions = try demoImages.map { try demo.caption($0) }
        // (b) A tiny random CLIP with the reference's lists.
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.precomputedCacheDirectory = root.appendingPathComponent("Tests/Fixtures/interrogator/cache")
        configuration.cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("turbo-quality-cache")
        configuration.progress = { counter.record($0) }
        let tiny = try Interrogator.load(clipDirectory: root.appendingPathComponent("Tests/Fixtures/interrogator/clip"),
                                         captionDirectory: nil, configuration: configuration)
        let tinyImages = (0..<40).map(syntheticImage)
        let subjects = ["a photo", "a painting of a house", "a portrait of a woman", "a city at night", "a cat on a sofa"]
        let tinyCaptions = tinyImages.indices.map { subjects[$0 % subjects.count] }

        // (c) The trained demo CLIP with the reference's lists: a trained text tower
        // and the real 2,048-wide candidate pool (words outside the demo's world
        // keep their untrained embeddings).
        var demoWide = InterrogatorConfiguration(encoderName: "demo-with-reference-lists")
        demoWide.cacheDirectory = configuration.cacheDirectory
        demoWide.progress = { counter.record($0) }
        let wide = try Interrogator.load(clipDirectory: DemoModel.clipDirectory, captionDirectory: nil, configuration: demoWide)
        let wideImages = Array(demoImages.prefix(40)), wideCaptions = Array(demoCaptions.prefix(40))

        var rows: [Row] = []
        for (name, interrogator, images, captions) in [("demo, 100 held-out images", demo, demoImages, demoCaptions),
                                                       ("tiny random CLIP, reference lists", tiny, tinyImages, tinyCaptions),
                                                       ("demo CLIP, reference lists, 40 images", wide, wideImages, wideCaptions)]
        where ProcessInfo.processInfo.environment["TURBO_QUALITY_SETS"].map({ $0.contains(name.prefix(4)) }) ?? true {
            _ = try interrogator.labelTables()
            var best: [(prompt: String, similarity: Float, seconds: Double)] = []
            var fast: [Float] = []
            counter.reset()
            for (image, caption) in zip(images, captions) {
                let embedding = try interrogator.imageEmbedding([image])
                let start = Date()
                let prompt = try interrogator.bestPrompt(image: embedding, caption: caption)
                best.append((prompt, try interrogator.similarity(embedding, prompt), Date().timeIntervalSince(start)))
                fast.append(try interrogator.similarity(embedding, try interrogator.fastPrompt(image: embedding, caption: caption)))
            }
            let bestTokens = counter.value.tokensEncoded
            for setting in settings {
                counter.reset()
                var ratios: [Double] = [], identical = 0, common: [Double] = [], belowFast = 0, seconds = 0.0
                for (index, (image, caption)) in zip(images, captions).enumerated() {
                    let embedding = try interrogator.imageEmbedding([image])
                    let start = Date()
                    let prompt = try interrogator.turboPrompt(image: embedding, caption: caption, settings: setting)
                    seconds += Date().timeIntervalSince(start)
                    let similarity = try interrogator.similarity(embedding, prompt)
                    ratios.append(Double(similarity / best[index].similarity))
                    if prompt == best[index].prompt { identical += 1 }
                    if similarity < fast[index] { belowFast += 1 }
                    let theirs = Set(best[index].prompt.components(separatedBy: ", ").dropFirst())
                    let ours = Set(prompt.components(separatedBy: ", ").dropFirst())
                    common.append(theirs.isEmpty ? 1 : Double(theirs.intersection(ours).count) / Double(theirs.count))
                }
                if ProcessInfo.processInfo.environment["TURBO_QUALITY_VERBOSE"] != nil {
                    for (index, ratio) in ratios.enumerated().prefix(8) {
                        print(String(format: "  %.4f  best %.4f  %@", ratio, best[index].similarity, best[index].prompt))
                    }
                }
                rows.append(Row(set: name, settings: "pool \(setting.poolSize), batch \(setting.batchSize), margin \(setting.margin)",
                                images: images.count, meanRatio: ratios.reduce(0, +) / Double(ratios.count),
                                worstRatio: ratios.min() ?? 0, identical: identical,
                                flavorsInCommon: common.reduce(0, +) / Double(common.count), belowFast: belowFast,
                                bestSeconds: best.map(\.seconds).reduce(0, +), turboSeconds: seconds,
                                bestTokens: bestTokens, turboTokens: counter.value.tokensEncoded))
            }
        }
        return rows
    }

    /// A deterministic 96×80 test image: gradients, a disc and noise, varied by `seed`.
    static func syntheticImage(_ seed: Int) -> RGBImage {
        let (width, height) = (96, 80)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var state = UInt64(seed + 1) &* 0x9E37_79B9_7F4A_7C15
        let (cx, cy, r) = (Double(seed * 17 % width), Double(seed * 29 % height), Double(10 + seed % 30))
        for y in 0..<height {
            for x in 0..<width {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let noise = Int(state >> 59)
                let inside = (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy) < r * r
                let i = (y * width + x) * 3
                pixels[i] = UInt8(truncatingIfNeeded: (inside ? 200 : x * 255 / width) + noise)
                pixels[i + 1] = UInt8(truncatingIfNeeded: (inside ? 40 * (seed % 5) : y * 255 / height) + noise)
                pixels[i + 2] = UInt8(truncatingIfNeeded: (seed * 37) % 256 + noise)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    static func printRows(_ rows: [Row]) {
        print("set | settings | images | mean ratio | worst ratio | identical | flavors in common | below fast | best s | turbo s | time ratio | work ratio")
        for r in rows {
            print(String(format: "%@ | %@ | %d | %.4f | %.4f | %d | %.2f | %d | %.2f | %.2f | %.3f | %.3f", r.set, r.settings, r.images,
                         r.meanRatio, r.worstRatio, r.identical, r.flavorsInCommon, r.belowFast, r.bestSeconds, r.turboSeconds,
                         r.timeRatio, r.workRatio))
        }
    }
}
