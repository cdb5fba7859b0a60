import Foundation
import NeuralCore
import NeuralModels

/// The reference's prompt-building modes, on an image embedding and a caption.
/// Each is a port of the clip-interrogator 0.6.0 method named in its comment.
extension Interrogator {
    /// `interrogate_fast`: the caption followed by the top `maxFlavors` labels of
    /// the merged tables, cut to fit CLIP's context.
    public func fastPrompt(image: [Float], caption: String, maxFlavors: Int = 32) throws -> String {
        fastPrompt(caption: caption, tops: try labelTables().merged.rankLabels(image, topCount: maxFlavors, method: configuration.ranking))
    }

    /// Fast mode's prompt from the merged tables' top labels.
    func fastPrompt(caption: String, tops: [String]) -> String {
        truncateToFit(caption + ", " + tops.joined(separator: ", "))
    }

    /// `interrogate_classic`: "caption, medium artist, trending, movement, flavors".
    public func classicPrompt(image: [Float], caption: String, maxFlavors: Int = 3) throws -> String {
        let ranking = configuration.ranking
        let tables = try labelTables()
        func top(_ table: LabelTable) -> String { table.rankLabels(image, topCount: 1, method: ranking).first ?? "" }
        let (medium, artist, trending, movement) = (top(tables.mediums), top(tables.artists), top(tables.trendings), top(tables.movements))
        let flavors = tables.flavors.rankLabels(image, topCount: maxFlavors, method: ranking).joined(separator: ", ")
        let prompt = caption.pythonHasPrefix(medium)
            ? "\(caption) \(artist), \(trending), \(movement), \(flavors)"
            : "\(caption), \(medium) \(artist), \(trending), \(movement), \(flavors)"
        return truncateToFit(prompt)
    }

    /// `interrogate` (best mode): a greedy chain of flavors after the caption,
    /// then whichever of caption, classic, fast and chain prompts is most similar
    /// to the image.
    public func bestPrompt(image: [Float], caption: String, minFlavors: Int = 8, maxFlavors: Int = 32) throws -> String {
        try bestPrompt(image: image, caption: caption, minFlavors: minFlavors, maxFlavors: maxFlavors, turbo: nil)
    }

    /// Best mode, with the exact chain or (given `turbo` settings) the turbo chain
    /// (``turboChain(image:phrases:start:minCount:maxCount:settings:name:trace:)``).
    /// The merged tables are ranked once for the chain's candidates and fast
    /// mode's labels.
    func bestPrompt(image: [Float], caption: String, minFlavors: Int, maxFlavors: Int, turbo: TurboSettings?) throws -> String {
        let merged = try labelTables().merged
        let flavors = merged.rankLabels(image, topCount: max(configuration.flavorIntermediateCount, maxFlavors), method: configuration.ranking)
        let pool = Array(flavors.prefix(configuration.flavorIntermediateCount))
        // As the reference's chain(best_prompt=caption): an empty caption means no
        // starting prompt, and the chain starts from the best phrase.
        let start = caption.isEmpty ? nil : (prompt: caption, similarity: try similarity(image, caption))
        let chained = try turbo.map {
            try turboChain(image: image, phrases: pool, start: start, minCount: minFlavors, maxCount: maxFlavors, settings: $0,
                           name: "Turbo chain")
        } ?? chain(image: image, phrases: pool, start: start, minCount: minFlavors, maxCount: maxFlavors, name: "Flavor chain")
        // The reference passes max_flavors to classic mode here, so its classic
        // candidate carries up to 32 flavors.
        let candidates = [caption, try classicPrompt(image: image, caption: caption, maxFlavors: maxFlavors),
                          fastPrompt(caption: caption, tops: Array(flavors.prefix(maxFlavors))), chained]
        let scores = try similarities(image, candidates)
        return candidates[Self.firstIndexOfMaximum(scores)]
    }

    /// `interrogate_negative`: a chain of the labels least similar to the image.
    public func negativePrompt(image: [Float], maxFlavors: Int = 32) throws -> String {
        let tables = try labelTables()
        let flavors = tables.flavors.rankLabels(image, topCount: configuration.flavorIntermediateCount, reverse: true,
                                                method: configuration.ranking)
        return try chain(image: image, phrases: flavors + tables.negative.labels, start: nil, minCount: 8,
                         maxCount: maxFlavors, reverse: true, name: "Negative chain")
    }

    /// The top `count` labels of every table with their similarity to the image
    /// (as the reference's Gradio "Analyze" tab: ranked with the cached
    /// embeddings, scored by encoding the winners afresh).
    public func analysis(image: [Float], count: Int = 5) throws -> [TableMatches] {
        let tables = try labelTables()
        let listed = [tables.mediums, tables.artists, tables.movements, tables.trendings, tables.flavors] + tables.custom
        return try listed.map { table in
            let top = table.rankLabels(image, topCount: count, method: configuration.ranking)
            return TableMatches(table: tables.titles[table.name] ?? table.name,
                                matches: zip(top, try similarities(image, top)).map { TableMatches.Match(label: $0.0, similarity: $0.1) })
        }
    }

    /// `chain`: grows a prompt greedily by the phrase that most increases (with
    /// `reverse`, decreases) its similarity to the image.
    ///
    /// Every step scores "current prompt, phrase" for all remaining phrases. The
    /// candidates share the current prompt's tokens; an encoder that can share
    /// them (``PrefixSharingTextEncoder``) computes them once per step and runs
    /// only each phrase's own tokens through the text tower.
    ///
    /// The reference keeps the phrases in a Python `set`, so its iteration order
    /// (and with it the winner among exactly tied candidates, such as labels
    /// that tokenise identically) depends on `PYTHONHASHSEED`. Here phrases keep
    /// the order they were given in (best-ranked first, duplicates dropped), and
    /// ties go to the earliest.
    /// `trace` receives each step's candidates, their (sign-adjusted) scores and
    /// what scoring them cost.
    func chain(image: [Float], phrases: [String], start: (prompt: String, similarity: Float)?, minCount: Int,
               maxCount: Int, reverse: Bool = false, name: String,
               trace: ((_ step: Int, _ candidates: [String], _ scores: [Float], _ cost: TextEncodingCost) -> Void)? = nil)
        throws -> String {
        var remaining = Self.uniqued(phrases)
        guard var best = try chainStart(image: image, start: start, remaining: &remaining, reverse: reverse) else { return "" }
        var current = best
        for step in 0..<maxCount {
            guard !remaining.isEmpty else { break }
            let candidates = remaining.map { "\(current.prompt), \($0)" }
            var (scores, cost) = try continuationSimilarities(image, prefix: current.prompt, candidates)
            if reverse { scores = scores.map { -$0 } }
            trace?(step, candidates, scores, cost)
            let index = Self.firstIndexOfMaximum(scores)
            let (prompt, score) = (candidates[index], scores[index])
            if score > best.similarity { best = (prompt, score) }
            try report(.chainStep(name: name, step: step + 1, maxSteps: maxCount, cost: cost))
            guard score > current.similarity || step < minCount else { break }
            current = (prompt, score)
            if encoder.fillsContext(current.prompt) { break }
            remaining.remove(at: index)
        }
        return best.prompt
    }

    /// A chain's starting prompt: `start` when given; else, as the reference's
    /// `chain(best_prompt="")`, the best of `remaining` (the least similar with
    /// `reverse`, though its score is kept unnegated, as the reference keeps it),
    /// taken out of `remaining`. Nil when there is neither.
    func chainStart(image: [Float], start: (prompt: String, similarity: Float)?, remaining: inout [String],
                    reverse: Bool) throws -> (prompt: String, similarity: Float)? {
        if let start { return start }
        guard !remaining.isEmpty else { return nil }
        let scores = try similarities(image, remaining)
        let index = Self.firstIndexOfMaximum(reverse ? scores.map { -$0 } : scores)
        return (remaining.remove(at: index), scores[index])
    }

    /// Similarities of texts that all start with `prefix` followed by more text,
    /// and what computing them cost: through the encoder's shared-prefix path
    /// when it has one and ``InterrogatorConfiguration/reuseChainPrefix`` is set,
    /// else one by one.
    func continuationSimilarities(_ image: [Float], prefix: String, _ texts: [String]) throws -> ([Float], TextEncodingCost) {
        let tokens = texts.map(encoder.tokenize)
        guard configuration.reuseChainPrefix, let sharing = encoder as? any PrefixSharingTextEncoder else {
            let cost = TextEncodingCost(texts: texts.count, tokens: tokens.reduce(0) { $0 + $1.count })
            return (rowDotProducts(try encoder.textEmbeddings(tokens), image), TextEncodingCost(texts: cost.texts, tokens: cost.tokens, tokensEncoded: cost.tokens))
        }
        let prefixTokens = Array(sharing.tokenize(prefix).dropLast()) // without the end token
        let (embeddings, cost) = try sharing.textEmbeddings(tokens, sharingPrefix: prefixTokens)
        return (rowDotProducts(embeddings, image), cost)
    }

    /// The first index of the largest value (`argmax`).
    static func firstIndexOfMaximum(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }

    /// `values` without repeats, first occurrences kept in order. Strings are
    /// compared by their code points, as Python compares them (Swift's `==` would
    /// also equate canonically equivalent spellings).
    static func uniqued(_ values: [String]) -> [String] {
        var seen = Set<[UInt8]>()
        return values.filter { seen.insert(Array($0.utf8)).inserted }
    }
}
