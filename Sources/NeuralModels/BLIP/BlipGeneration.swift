// Port of transformers/generation/utils.py (GenerationMixin: _prepare_generated_length,
// _get_logits_processor, _sample without sampling, _beam_search and its helpers
// _get_top_k_continuations, _get_running_beams_for_next_iteration,
// _update_finished_beams, _check_early_stop_heuristic,
// _beam_search_has_unfinished_sequences) and transformers/generation/logits_process.py
// (RepetitionPenaltyLogitsProcessor, NoRepeatNGramLogitsProcessor,
// MinLengthLogitsProcessor, MinNewTokensLengthLogitsProcessor), transformers 5.24.
import Foundation
import NeuralCore

/// Decoding settings, named and defaulted as transformers' `GenerationConfig`
/// fields, except ``maxNewTokens`` whose default 32 is clip-interrogator's
/// `caption_max_length`. Greedy search when ``numBeams`` is 1, beam search
/// otherwise (no sampling); one returned sequence per input.
public struct GenerationOptions: Sendable, Equatable {
    /// When beam search stops (`early_stopping`).
    public enum EarlyStopping: Sendable, Equatable {
        /// `False` (the default): stop an input when the best running beam, at its
        /// current length, can no longer beat the worst finished one.
        case heuristic
        /// `True`: stop an input as soon as `numBeams` sequences have finished.
        case whenFull
        /// `"never"`: the canonical beam search's bound (with a positive length
        /// penalty, the best running score is estimated at the maximum length).
        case never
    }

    /// New tokens at most after the prompt (`max_new_tokens`); takes precedence over ``maxLength``.
    public var maxNewTokens: Int?
    /// Total length at most, prompt included (`max_length`), used when
    /// ``maxNewTokens`` is nil; when both are nil, 20 new tokens capped at the
    /// decoder's position table (transformers' default).
    public var maxLength: Int?
    /// The end token is banned while the sequence, prompt included, is shorter (`min_length`).
    public var minLength: Int
    /// The end token is banned until this many new tokens exist (`min_new_tokens`;
    /// replaces ``minLength`` when set).
    public var minNewTokens: Int?
    /// Beams (`num_beams`); 1 is greedy search.
    public var numBeams: Int
    /// Finished beams score `sum log p / generated_length ^ lengthPenalty` (`length_penalty`).
    public var lengthPenalty: Double
    /// Beam search stopping rule (`early_stopping`).
    public var earlyStopping: EarlyStopping
    /// `repetition_penalty`: scores of tokens already in the sequence are divided
    /// (positive) or multiplied (negative) by it; 1 disables it.
    public var repetitionPenalty: Double
    /// `no_repeat_ngram_size`: an n-gram may occur once per sequence; 0 disables it.
    public var noRepeatNgramSize: Int

    /// Creates options; every argument defaults to transformers' value (``maxNewTokens`` to 32).
    public init(maxNewTokens: Int? = 32, maxLength: Int? = nil, minLength: Int = 0, minNewTokens: Int? = nil,
                numBeams: Int = 1, lengthPenalty: Double = 1.0, earlyStopping: EarlyStopping = .heuristic,
                repetitionPenalty: Double = 1.0, noRepeatNgramSize: Int = 0) {
        self.maxNewTokens = maxNewTokens
        self.maxLength = maxLength
        self.minLength = minLength
        self.minNewTokens = minNewTokens
        self.numBeams = numBeams
        self.lengthPenalty = lengthPenalty
        self.earlyStopping = earlyStopping
        self.repetitionPenalty = repetitionPenalty
        self.noRepeatNgramSize = noRepeatNgramSize
    }
}

/// An invalid generation request.
public enum GenerationError: Error, Equatable, CustomStringConvertible, Sendable {
    /// An option outside its valid range; the message names it.
    case invalidOption(String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .invalidOption(message): "invalid generation option: \(message)"
        }
    }
}

/// A record of the decoder work a generation did: per decoder call, how many
/// sequences (beams) were fed and how many token positions went through the
/// decoder layers. With a KV cache the first call feeds the prompt and every later
/// one a single new token per live sequence.
public struct GenerationTrace: Sendable, Equatable {
    /// One entry per decoder call.
    public struct Step: Sendable, Equatable {
        /// Sequences fed in this call.
        public var rows: Int
        /// Token positions run through the decoder layers in this call.
        public var positions: Int

        /// A record of one call.
        public init(rows: Int, positions: Int) {
            self.rows = rows
            self.positions = positions
        }
    }

    /// The decoder calls, in order.
    public var steps: [Step] = []
    /// Called after each decoder call with the number of calls so far (each call
    /// yields one new token per live sequence): progress reporting; an error it
    /// throws (a cancellation) stops generation and is rethrown.
    public var onStep: (@Sendable (_ calls: Int) throws -> Void)?
    /// All token positions run through the decoder layers.
    public var totalPositions: Int { steps.reduce(0) { $0 + $1.positions } }

    /// An empty trace, optionally reporting each step.
    public init(onStep: (@Sendable (_ calls: Int) throws -> Void)? = nil) {
        self.onStep = onStep
    }

    /// Traces are equal when they record the same steps.
    public static func == (lhs: GenerationTrace, rhs: GenerationTrace) -> Bool { lhs.steps == rhs.steps }
}

/// The resolved lengths and ids of one generation call.
struct GenerationPlan {
    var promptLength: Int
    var maxLength: Int
    var minLength: Int
    var endTokenId: Int?
    var padTokenId: Int?
    var options: GenerationOptions
}

extension BlipTextDecoder {
    /// Resolves lengths as `_prepare_generated_length` does and checks the options.
    func plan(promptLength: Int, options: GenerationOptions) throws -> GenerationPlan {
        guard promptLength > 0 else { throw GenerationError.invalidOption("empty prompt") }
        guard options.numBeams >= 1 else { throw GenerationError.invalidOption("numBeams \(options.numBeams) < 1") }
        guard options.repetitionPenalty > 0 else { throw GenerationError.invalidOption("repetitionPenalty \(options.repetitionPenalty) ≤ 0") }
        guard options.noRepeatNgramSize >= 0 else { throw GenerationError.invalidOption("noRepeatNgramSize < 0") }
        let maxLength: Int
        if let maxNew = options.maxNewTokens {
            guard maxNew > 0 else { throw GenerationError.invalidOption("maxNewTokens \(maxNew) < 1") }
            maxLength = promptLength + maxNew
        } else if let total = options.maxLength {
            maxLength = total
        } else {
            maxLength = min(promptLength + 20, config.maxPositionEmbeddings)
        }
        guard maxLength > promptLength else {
            throw GenerationError.invalidOption("maxLength \(maxLength) leaves no room after a \(promptLength)-token prompt")
        }
        let minLength = options.minNewTokens.map { promptLength + $0 } ?? options.minLength
        // BLIP's generate: eos_token_id = sep_token_id, pad_token_id = pad_token_id
        // (transformers falls back to the end token when there is no pad id).
        let end = config.sepTokenId
        return GenerationPlan(promptLength: promptLength, maxLength: maxLength, minLength: minLength,
                              endTokenId: end, padTokenId: config.padTokenId ?? end, options: options)
    }

    /// The logits processors transformers builds for these options, in its order
    /// (repetition penalty, no-repeat n-gram, minimum length), applied to one row
    /// of `vocab` scores for a sequence `sequence` (prompt included).
    static func processScores(_ scores: UnsafeMutablePointer<Float>, vocab: Int, sequence: [Int], plan: GenerationPlan) {
        let options = plan.options
        if options.repetitionPenalty != 1 {
            let penalty = Float(options.repetitionPenalty)
            for token in Set(sequence) where token >= 0 && token < vocab {
                let s = scores[token]
                scores[token] = s < 0 ? s * penalty : s / penalty
            }
        }
        let n = options.noRepeatNgramSize
        if n > 0 && sequence.count >= n {
            let length = sequence.count
            let suffix = sequence[(length - n + 1)..<length]
            for start in 0...(length - n) where sequence[start..<(start + n - 1)].elementsEqual(suffix) {
                let banned = sequence[start + n - 1]
                if banned >= 0 && banned < vocab { scores[banned] = -.infinity }
            }
        }
        if let end = plan.endTokenId, plan.minLength > 0, sequence.count < plan.minLength, end >= 0, end < vocab {
            scores[end] = -.infinity
        }
    }

    /// Greedy search over sequences reading images `0..<imageCount` of `context`
    /// (`_sample` without sampling). Finished sequences are padded with the pad id
    /// until all have finished or the maximum length is reached; all rows come back
    /// with the same length, as transformers' output tensor.
    func greedySearch(context: BlipImageContext, prompt: [Int], plan: GenerationPlan,
                      trace: inout GenerationTrace) throws -> [[Int]] {
        let batch = context.imageCount
        var sequences = Array(repeating: prompt, count: batch)
        var live = Array(0..<batch) // batch index of each state row
        var state = makeState(context: context, imageOfRow: live, capacity: plan.maxLength)
        var feed = Array(repeating: prompt, count: batch)
        let vocab = config.vocabSize
        while true {
            var logits = try nextTokenLogits(feed, state: &state)
            trace.steps.append(.init(rows: feed.count, positions: feed.count * feed[0].count))
            try trace.onStep?(trace.steps.count)
            var keep: [Int] = [], nextLive: [Int] = []
            logits.withUnsafeMutableFloats { scores in
                for (r, b) in live.enumerated() {
                    let row = scores.baseAddress! + r * vocab
                    Self.processScores(row, vocab: vocab, sequence: sequences[b], plan: plan)
                    let token = argmax(row, count: vocab)
                    sequences[b].append(token)
                    if token != plan.endTokenId {
                        keep.append(r)
                        nextLive.append(b)
                    }
                }
            }
            let liveSet = Set(live)
            for b in 0..<batch where !liveSet.contains(b) { sequences[b].append(plan.padTokenId ?? 0) }
            if sequences[0].count >= plan.maxLength || nextLive.isEmpty { break }
            state.selectRows(keep)
            live = nextLive
            feed = live.map { [sequences[$0].last!] }
        }
        return sequences
    }

    /// One finished-hypothesis slot of beam search (`sequences`, `beam_scores`,
    /// `is_sent_finished` entries).
    private struct Hypothesis {
        var sequence: [Int]
        var score: Float
        var finished: Bool
    }

    /// Beam search (`_beam_search`) over sequences reading images `0..<imageCount`
    /// of `context`, returning the best finished sequence per image, right-padded
    /// to a common length with transformers' fill value (`pad_token_id or
    /// eos_token_id`: a pad id of 0 pads with the end token).
    func beamSearch(context: BlipImageContext, prompt: [Int], plan: GenerationPlan,
                    trace: inout GenerationTrace) throws -> [[Int]] {
        let batch = context.imageCount
        let beams = plan.options.numBeams
        let vocab = config.vocabSize
        let promptLength = prompt.count
        let candidatesPerInput = 2 * beams // max(2, 1 + number of end tokens) · num_beams
        let lengthPenalty = plan.options.lengthPenalty
        let earlyStopping = plan.options.earlyStopping
        let big: Float = -1.0e9

        // Per input: running beams, finished slots, the early-stop bit.
        var running = Array(repeating: Array(repeating: prompt, count: beams), count: batch)
        var runningScores = Array(repeating: [0] + Array(repeating: big, count: beams - 1), count: batch)
        var slots = Array(repeating: Array(repeating: Hypothesis(sequence: prompt, score: big, finished: false), count: beams),
                          count: batch)
        var improvable = Array(repeating: true, count: batch)
        var active = Array(0..<batch) // inputs still searching, in state row order

        // Prefill once per image; every beam of an input starts from that row.
        var state = makeState(context: context, imageOfRow: Array(0..<batch), capacity: plan.maxLength)
        var feed = Array(repeating: prompt, count: batch)
        var curLen = promptLength
        let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: beams * vocab)
        defer { logProbs.deallocate() }

        while true {
            let logits = try nextTokenLogits(feed, state: &state)
            trace.steps.append(.init(rows: feed.count, positions: feed.count * feed[0].count))
            try trace.onStep?(trace.steps.count)
            // State row of beam `beam` of the `slot`-th active input (after the
            // prefill, whose one row per image stands for all of its beams).
            let prefill = curLen == promptLength
            func row(_ slot: Int, _ beam: Int) -> Int { prefill ? slot : slot * beams + beam }
            var gather: [Int] = []
            var stillActive: [Int] = []
            withExtendedLifetime(logits) {
                for (slot, b) in active.enumerated() {
                    // b. log-softmax, processors, accumulated scores.
                    for j in 0..<beams {
                        let out = logProbs + j * vocab
                        logSoftmax(out, logits.unsafeFloatPointer + row(slot, j) * vocab, count: vocab)
                        Self.processScores(out, vocab: vocab, sequence: running[b][j], plan: plan)
                        let previous = runningScores[b][j]
                        for v in 0..<vocab { out[v] += previous }
                    }
                    // c. top-K continuations over beams × vocab.
                    let top = topK(logProbs, count: beams * vocab, k: candidatesPerInput)
                    var candidates: [(sequence: [Int], sourceBeam: Int, score: Float, hits: Bool)] = []
                    for (score, index) in top {
                        let beam = index / vocab, token = index % vocab
                        let hits = token == plan.endTokenId || curLen + 1 >= plan.maxLength
                        candidates.append((running[b][beam] + [token], beam, score, hits))
                    }
                    // e. the best non-finished candidates keep running.
                    let runningOrder = topK(candidates.map { $0.score + ($0.hits ? big : 0) }, k: beams)
                    running[b] = runningOrder.map { candidates[$0.index].sequence }
                    runningScores[b] = runningOrder.map { $0.value }
                    gather += runningOrder.map { row(slot, candidates[$0.index].sourceBeam) }
                    // f. finished candidates among the top num_beams enter the finished slots.
                    let allFinished = slots[b].allSatisfy(\.finished)
                    let divisor = Float(pow(Double(curLen + 1 - promptLength), lengthPenalty))
                    var merged = slots[b]
                    for (i, candidate) in candidates.enumerated() {
                        var score = candidate.score / divisor
                        if allFinished && earlyStopping == .whenFull { score += big }
                        if !improvable[b] { score += big }
                        let justFinished = candidate.hits && i < beams
                        if !justFinished { score += big }
                        merged.append(Hypothesis(sequence: candidate.sequence, score: score, finished: justFinished))
                    }
                    slots[b] = topK(merged.map(\.score), k: beams).map { merged[$0.index] }
                    // g. early-stop heuristic, at the new length.
                    let hypotheticalLength = earlyStopping == .never && lengthPenalty > 0
                        ? plan.maxLength - promptLength : curLen + 1 - promptLength
                    let best = runningScores[b][0] / Float(pow(Double(hypotheticalLength), lengthPenalty))
                    let worst = slots[b].map(\.score).min()!
                    improvable[b] = improvable[b] && slots[b].contains { best > ($0.finished ? worst : big) }
                    let full = earlyStopping == .whenFull && slots[b].allSatisfy(\.finished)
                    if improvable[b] && !full { stillActive.append(b) } else { gather.removeLast(beams) }
                }
            }
            curLen += 1
            if curLen >= plan.maxLength || stillActive.isEmpty { break }
            state.selectRows(gather)
            active = stillActive
            feed = active.flatMap { b in running[b].map { [$0.last!] } }
        }

        // Crop to the longest best sequence; pad with `pad_token_id or eos_token_id`.
        let fill: Int = plan.endTokenId == nil ? -1 : ((config.padTokenId ?? 0) != 0 ? config.padTokenId! : plan.endTokenId!)
        let best = slots.map { $0[0].sequence }
        let length = best.map(\.count).max() ?? promptLength
        return best.map { $0 + Array(repeating: fill, count: length - $0.count) }
    }
}

/// The index of the first largest of `count` scores (`torch.argmax`).
func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for i in 1..<count where x[i] > x[best] { best = i }
    return best
}

/// `log_softmax` of `count` scores: `x − max − log Σ exp(x − max)`, the sum in Double.
func logSoftmax(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, x[i]) }
    var sum = 0.0
    for i in 0..<count { sum += exp(Double(x[i] - maximum)) }
    let logSum = Float(log(sum))
    for i in 0..<count { y[i] = x[i] - maximum - logSum }
}

/// The `k` largest of `count` scores with their indices, largest first; equal
/// scores keep index order (`torch.topk`, sorted).
func topK(_ x: UnsafePointer<Float>, count: Int, k: Int) -> [(value: Float, index: Int)] {
    var top: [(value: Float, index: Int)] = []
    top.reserveCapacity(k + 1)
    for i in 0..<count {
        let v = x[i]
        if top.count == k, !(v > top[k - 1].value) { continue }
        var position = top.count
        while position > 0 && v > top[position - 1].value { position -= 1 }
        top.insert((v, i), at: position)
        if top.count > k { top.removeLast() }
    }
    return top
}

/// ``topK(_:count:k:)`` over an array.
func topK(_ x: [Float], k: Int) -> [(value: Float, index: Int)] {
    x.withUnsafeBufferPointer { topK($0.baseAddress!, count: $0.count, k: k) }
}

extension GenerationError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
