import ClipInterrogator
import Foundation
import NeuralCore
import NeuralModels

/// Stages 3 and 4: CLIP text work on the reference's label tables.
enum TextStages {
    /// The repository root (the benchmark reads the committed CLIP BPE files).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func tokenizer() throws -> CLIPTokenizer {
        try CLIPTokenizer(directory: root.appendingPathComponent("Tests/Fixtures/clip-tokenizer"))
    }

    /// The 111,867 labels the reference embeds (artists ×2, flavors, mediums, movements, trendings).
    static func referenceLabels() throws -> [String] {
        ReferenceLabels.artists(from: try ReferenceLabels.list(.artists)) + (try ReferenceLabels.list(.flavors))
            + (try ReferenceLabels.list(.mediums)) + (try ReferenceLabels.list(.movements)) + ReferenceLabels.trendings
    }

    /// Every `stride`-th label: a sample with the tables' length distribution.
    static func sample(_ labels: [String], count: Int) -> [String] {
        let step = max(1, labels.count / count)
        return Array(stride(from: 0, to: labels.count, by: step).prefix(count).map { labels[$0] })
    }

    /// Stage 3: tokenising all labels; embedding a sample at true length (grouped by
    /// length) and padded to 77 tokens (the reference's method), in labels per second.
    static func labelEmbedding(runs: Int, sampleSize: Int) throws -> [Measurement] {
        let labels = try referenceLabels()
        let fresh = try tokenizer()
        var results = [measure(stage: "3 labels", "tokenize \(labels.count) labels (first run, cold cache)", runs: 1,
                               warmUp: false, items: Double(labels.count)) { _ = fresh.encodeUnpadded(labels) }]
        let tokenizer = try tokenizer()
        results.append(measure(stage: "3 labels", "tokenize \(labels.count) labels (warm cache)", runs: runs,
                               items: Double(labels.count)) { _ = tokenizer.encodeUnpadded(labels) })
        let model = try BenchmarkModels.clip(BenchmarkModels.vitL14)
        let subset = sample(labels, count: sampleSize)
        let ids = tokenizer.encodeUnpadded(subset).map { $0.map(Int.init) }
        let tokens = ids.map(\.count).reduce(0, +)
        results.append(try measure(stage: "3 labels", "ViT-L/14 text, true length, \(subset.count) labels (\(tokens) tokens)",
                                   runs: runs, items: Double(subset.count)) { _ = try model.textEmbeddings(ids) })
        let paddedCount = max(1, sampleSize / 8)
        let padded = ids.prefix(paddedCount).map { $0 + Array(repeating: 0, count: 77 - $0.count) }
        // Padding follows the end token, so pooling still picks it; encode all 77 positions.
        results.append(try measure(stage: "3 labels", "ViT-L/14 text, padded to 77, \(paddedCount) labels",
                                   runs: runs, items: Double(paddedCount)) {
            _ = try model.textModel.encode(Array(padded))
        })
        return results
    }

    /// Stage 4: one best-mode chain step: 2048 candidates "prompt, flavor" scored
    /// as one token tree over the prompt's cached states (the name says how many
    /// token positions that encoded), and (on 256 of them) by full re-encoding.
    static func chainStep(runs: Int) throws -> [Measurement] {
        let tokenizer = try tokenizer()
        let flavors = sample(try ReferenceLabels.list(.flavors), count: 2048)
        let prompt = "a painting of a lighthouse on a rocky coast at sunset, by greg rutkowski, trending on artstation, "
            + "highly detailed, dramatic lighting, oil on canvas"
        let candidates = flavors.map { tokenizer.encodeUnpadded("\(prompt), \($0)").map(Int.init) }
        var prefix = tokenizer.encodeUnpadded(prompt).map(Int.init)
        prefix.removeLast()
        let model = try BenchmarkModels.clip(BenchmarkModels.vitL14)
        let cost = try model.textFeaturesAndCost(candidates, continuing: model.textModel.prefixCache(prefix)).cost
        let tokensPerCandidate = candidates.map { $0.count - prefix.count }.reduce(0, +)
        let cached = try measure(stage: "4 chain step",
                                 "2048 candidates, token tree over the cached \(prefix.count)-token prompt "
                                     + "(\(cost.tokensEncoded - prefix.count) of \(tokensPerCandidate) candidate tokens encoded)",
                                 runs: runs, items: 2048) {
            _ = try model.textFeatures(candidates, continuing: model.textModel.prefixCache(prefix))
        }
        // Full re-encoding costs ~7× more: a 256-candidate subset gives its per-candidate rate.
        let subset = Array(candidates.prefix(256))
        let full = try measure(stage: "4 chain step", "256 candidates, full re-encoding (true length)", runs: max(1, runs / 2),
                               items: Double(subset.count)) { _ = try model.textFeatures(subset) }
        return [cached, full]
    }
}
