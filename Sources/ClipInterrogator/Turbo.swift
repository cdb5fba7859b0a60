import Foundation
import NeuralCore
import NeuralModels

/// The knobs of turbo mode's chain (``InterrogationMode/turbo``).
///
/// Turbo runs best mode with a cheaper chain search. Best mode's chain scores
/// every remaining candidate ("prompt, phrase") at every step: about 2,000
/// candidates times up to 32 steps. Turbo's chain
/// (`Interrogator/turboChain(image:phrases:start:minCount:maxCount:settings:name:trace:)`)
/// keeps two savings, both deterministic:
///
/// 1. **A smaller pool.** It draws from the ``poolSize`` best-ranked of best
///    mode's candidates (ranked by each phrase's own similarity to the image).
/// 2. **Lazy re-scoring.** A phrase's *gain* is how much adding it raised the
///    prompt's similarity when it was last scored. Gains shrink as the prompt
///    grows, so a stale gain is an optimistic estimate. Each step re-scores
///    candidates in order of their last gain, ``batchSize`` at a time, and stops
///    as soon as the best gain found this step beats every remaining
///    candidate's last gain by more than ``margin``. The first step scores the
///    whole pool, in one pass. When gains never grow, the step's pick is
///    exactly the one scoring the whole pool would make (lazy greedy
///    evaluation).
///
/// Best mode's final choice is kept: the most similar of the caption, the
/// classic and fast prompts and the chain, so a turbo prompt is never less
/// similar to the image than the fast prompt.
public struct TurboSettings: Sendable, Equatable {
    /// Candidates the chain draws from: the best-ranked this many.
    public var poolSize: Int
    /// Candidates re-scored together (one batch through the text tower).
    public var batchSize: Int
    /// How far a candidate's last gain may fall below the step's best gain and
    /// still be re-scored; 0 re-scores only candidates that could still win.
    public var margin: Float

    /// Settings; the defaults come from the measurements in Docs/performance.md.
    public init(poolSize: Int = 256, batchSize: Int = 32, margin: Float = 0) {
        self.poolSize = poolSize
        self.batchSize = batchSize
        self.margin = margin
    }
}

extension Interrogator {
    /// Turbo mode's prompt (best mode with the turbo chain) for an image
    /// embedding and a caption, with `settings` (default: the configuration's).
    public func turboPrompt(image: [Float], caption: String, minFlavors: Int = 8, maxFlavors: Int = 32,
                            settings: TurboSettings? = nil) throws -> String {
        try bestPrompt(image: image, caption: caption, minFlavors: minFlavors, maxFlavors: maxFlavors,
                       turbo: settings ?? configuration.turbo)
    }

    /// Turbo mode's chain: ``chain(image:phrases:start:minCount:maxCount:reverse:name:trace:)``
    /// over the first ``TurboSettings/poolSize`` phrases, re-scoring lazily (see
    /// ``TurboSettings``). Ties go to the earlier phrase, as in the exact chain.
    /// `trace` receives each step's re-scored candidates, their scores and cost.
    func turboChain(image: [Float], phrases: [String], start: (prompt: String, similarity: Float)?, minCount: Int,
                    maxCount: Int, settings: TurboSettings, name: String,
                    trace: ((_ step: Int, _ candidates: [String], _ scores: [Float], _ cost: TextEncodingCost) -> Void)? = nil)
        throws -> String {
        var remaining = Array(Self.uniqued(phrases).prefix(max(1, settings.poolSize)))
        guard var best = try chainStart(image: image, start: start, remaining: &remaining, reverse: false) else { return "" }
        var current = best
        // The gain each phrase gave when last scored; nil until it is scored.
        var lastGain = [Float?](repeating: nil, count: remaining.count)
        let batch = max(1, settings.batchSize)
        for step in 0..<maxCount {
            guard !remaining.isEmpty else { break }
            // Unscored phrases first (they could gain anything), then by last gain.
            let order = remaining.indices.sorted { a, b in
                let (x, y) = (lastGain[a] ?? .infinity, lastGain[b] ?? .infinity)
                return x > y || (x == y && a < b)
            }
            var scored: [(index: Int, score: Float)] = [], cost = TextEncodingCost()
            var cursor = 0
            repeat {
                // Unscored phrases are all scored anyway (their gain could be
                // anything): one pass through the text tower for all of them
                // (the whole pool at the first step), then `batch` at a time.
                let unscored = order[cursor...].prefix { lastGain[$0] == nil }.count
                let indices = Array(order[cursor..<min(cursor + max(batch, unscored), order.count)])
                cursor += indices.count
                let candidates = indices.map { "\(current.prompt), \(remaining[$0])" }
                let (scores, batchCost) = try continuationSimilarities(image, prefix: current.prompt, candidates)
                cost = cost + batchCost
                for (index, score) in zip(indices, scores) {
                    lastGain[index] = score - current.similarity
                    scored.append((index, score))
                }
                trace?(step, candidates, scores, batchCost)
            } while cursor < order.count
                && lastGain[order[cursor]].map { $0 + settings.margin > scored.map(\.score).max()! - current.similarity } ?? true
            let winner = scored.min { a, b in a.score > b.score || (a.score == b.score && a.index < b.index) }!
            let (prompt, score) = ("\(current.prompt), \(remaining[winner.index])", winner.score)
            if score > best.similarity { best = (prompt, score) }
            try report(.chainStep(name: name, step: step + 1, maxSteps: maxCount, cost: cost))
            guard score > current.similarity || step < minCount else { break }
            current = (prompt, score)
            if encoder.fillsContext(current.prompt) { break }
            remaining.remove(at: winner.index)
            lastGain.remove(at: winner.index)
        }
        return best.prompt
    }
}
