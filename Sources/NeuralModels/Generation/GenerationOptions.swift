import Foundation
// Generation settings and bookkeeping shared by every incremental decoder: the
// GenerationConfig fields transformers 5.24's generation/utils.py reads for greedy
// and beam search (no sampling), its invalid-option errors, and a trace of the
// decoder calls.

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
    /// - Parameters:
    ///   - maxNewTokens: ``maxNewTokens``: new tokens at most, or nil to use `maxLength`.
    ///   - maxLength: ``maxLength``: total length at most, prompt included.
    ///   - minLength: ``minLength``: the end token is banned below this total length.
    ///   - minNewTokens: ``minNewTokens``: the end token is banned below this many new tokens.
    ///   - numBeams: ``numBeams``: 1 for greedy search, more for beam search.
    ///   - lengthPenalty: ``lengthPenalty``: the exponent of the generated length dividing a finished beam's score.
    ///   - earlyStopping: ``earlyStopping``: beam search's stopping rule.
    ///   - repetitionPenalty: ``repetitionPenalty``: 1 disables it.
    ///   - noRepeatNgramSize: ``noRepeatNgramSize``: 0 disables it.
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

extension GenerationError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
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
        /// - Parameters:
        ///   - rows: sequences fed.
        ///   - positions: token positions run through the decoder layers.
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
    /// - Parameter onStep: called after each decoder call with the number of calls so far.
    public init(onStep: (@Sendable (_ calls: Int) throws -> Void)? = nil) {
        self.onStep = onStep
    }

    /// Records a decoder call that fed `ids` (one equal-length list per live
    /// sequence) and reports it to ``onStep``.
    mutating func record(_ ids: [[Int]]) throws {
        steps.append(Step(rows: ids.count, positions: ids.count * (ids.first?.count ?? 0)))
        try onStep?(steps.count)
    }

    /// Traces are equal when they record the same steps (``onStep`` is not compared).
    /// - Parameters:
    ///   - lhs: a trace.
    ///   - rhs: another trace.
    public static func == (lhs: GenerationTrace, rhs: GenerationTrace) -> Bool { lhs.steps == rhs.steps }
}
