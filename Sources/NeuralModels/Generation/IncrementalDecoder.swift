// The seam between a caption model's decoder and the generic searches: what
// transformers 5.24's GenerationMixin (generation/utils.py) asks of a model — a
// cached forward pass returning `logits[:, -1]`, cache row reordering
// (`Cache.reorder_cache` / `_reorder_cache`), the eos/pad ids and
// `max_position_embeddings` — plus `_prepare_generated_length` and the choice
// between `_sample` (greedy) and `_beam_search` that `generate` makes.
import NeuralCore

/// What the sequences of one generation are conditioned on: ``inputCount``
/// inputs (images), each prepared once (BLIP: every layer's cross-attention keys
/// and values) and shared by all of its sequences (beams) and decoding steps.
public protocol DecoderContext {
    /// The number of inputs; generation returns one sequence per input.
    var inputCount: Int { get }
}

/// The explicit state of sequences decoded in lockstep, one row per sequence:
/// typically a KV cache whose length is the next token's position, and which
/// input each row reads.
public protocol DecoderState {
    /// The number of sequences (rows).
    var rows: Int { get }

    /// Keeps, in order, the rows at `indices`.
    ///
    /// Beam search reorders and duplicates rows with it (transformers'
    /// `reorder_cache`); both searches drop the rows of finished sequences.
    /// - Parameter indices: the rows to keep, each in `0..<rows`; a row may appear
    ///   several times, rows not listed are dropped.
    mutating func selectRows(_ indices: [Int])
}

/// A decoder that produces next-token logits one step at a time over an explicit
/// ``DecoderState``: what greedy and beam search need from a caption model.
///
/// A conformer prepares its inputs once as a ``Context`` (for instance the
/// image's cross-attention keys and values), makes a ``State`` for rows reading
/// those inputs, and feeds new tokens through ``nextTokenLogits(_:state:)``. The
/// searches (``plan(prompt:options:)``, then ``generate(context:plan:trace:)``)
/// are written once over this protocol, as transformers' `GenerationMixin` is;
/// ``BlipTextDecoder`` is a conformer.
public protocol IncrementalDecoder {
    /// The prepared inputs the sequences are conditioned on.
    associatedtype Context: DecoderContext
    /// The per-row decoding state (KV cache).
    associatedtype State: DecoderState

    /// The width of a logits row (`vocab_size`).
    var vocabSize: Int { get }
    /// The token that ends a sequence (transformers' `eos_token_id` as the
    /// model's `generate` passes it; BLIP: `sep_token_id`), or nil when sequences
    /// end only at the maximum length.
    var endTokenId: Int? { get }
    /// `pad_token_id`, or nil when the model has none.
    var padTokenId: Int? { get }
    /// The size of the position table (`max_position_embeddings`): sequences may
    /// not be longer, and the default maximum length is capped at it.
    var maxPositionEmbeddings: Int { get }

    /// An empty state for sequences reading the inputs `inputOfRow` of `context`.
    /// - Parameters:
    ///   - context: the prepared inputs.
    ///   - inputOfRow: per row, the index of the input it reads, in `0..<context.inputCount`.
    ///   - capacity: tokens per row to reserve room for (a hint: the state may grow).
    /// - Throws: whatever preparing the state may throw.
    func makeState(context: Context, inputOfRow: [Int], capacity: Int) throws -> State

    /// Feeds the next tokens and returns the logits at each row's last new token.
    /// - Parameters:
    ///   - ids: `[R][T]`, one equal-length list of new tokens per row of `state`
    ///     (the prompt on the first call, then one token per row).
    ///   - state: the rows' state; the new tokens are appended to it.
    /// - Returns: `[R, vocabSize]` logits (transformers' `logits[:, -1]`).
    /// - Throws: the conformer's input errors (e.g. positions past the table).
    func nextTokenLogits(_ ids: [[Int]], state: inout State) throws -> Tensor
}

/// The resolved lengths and ids of one generation call
/// (`_prepare_generated_length`, and the special tokens `generate` uses), made by
/// ``IncrementalDecoder/plan(prompt:options:)`` from a decoder and options.
public struct GenerationPlan: Sendable, Equatable {
    /// The decoder prompt every sequence starts from.
    public let prompt: [Int]
    /// Total length at most, prompt included.
    public let maxLength: Int
    /// The end token is banned while a sequence, prompt included, is shorter.
    public let minLength: Int
    /// The token that ends a sequence, if any.
    public let endTokenId: Int?
    /// The id greedy search pads finished rows with: the decoder's pad id, or the
    /// end id when it has none (transformers' fallback).
    public let padTokenId: Int?
    /// The options the plan was resolved from.
    public let options: GenerationOptions

    /// The number of prompt tokens.
    public var promptLength: Int { prompt.count }
}

extension IncrementalDecoder {
    /// Checks `options` and resolves the lengths as `_prepare_generated_length`
    /// does: `maxNewTokens` over `maxLength` over 20 new tokens capped at
    /// ``maxPositionEmbeddings``; `minNewTokens` over `minLength`. Cheap: call it
    /// before preparing the inputs, so an invalid request fails first.
    /// - Parameters:
    ///   - prompt: the decoder prompt (at least one token).
    ///   - options: the decoding settings.
    /// - Returns: the plan ``generate(context:plan:trace:)`` follows.
    /// - Throws: ``GenerationError/invalidOption(_:)``.
    public func plan(prompt: [Int], options: GenerationOptions) throws -> GenerationPlan {
        let promptLength = prompt.count
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
            maxLength = min(promptLength + 20, maxPositionEmbeddings)
        }
        guard maxLength > promptLength else {
            throw GenerationError.invalidOption("maxLength \(maxLength) leaves no room after a \(promptLength)-token prompt")
        }
        let minLength = options.minNewTokens.map { promptLength + $0 } ?? options.minLength
        // transformers falls back to the end token when there is no pad id.
        return GenerationPlan(prompt: prompt, maxLength: maxLength, minLength: minLength,
                              endTokenId: endTokenId, padTokenId: padTokenId ?? endTokenId, options: options)
    }

    /// Generates one sequence per input of `context`, as `generate` does: greedy
    /// search when `plan.options.numBeams` is 1, beam search otherwise. Every input
    /// stops on its own; the result is the same as generating each input alone,
    /// right-padded to a common length.
    ///
    /// Returns the sequences, prompt included, all of one length as transformers'
    /// output tensor: greedy rows that finished early are padded with
    /// `plan.padTokenId`; beam-search rows with `pad_token_id or eos_token_id`
    /// (a pad id of 0 pads with the end token).
    /// - Parameters:
    ///   - context: the prepared inputs (at least one).
    ///   - plan: lengths and ids from ``plan(prompt:options:)`` on this decoder.
    ///   - trace: records every decoder call and reports it to its `onStep`.
    /// - Throws: whatever ``makeState(context:inputOfRow:capacity:)`` or
    ///   ``nextTokenLogits(_:state:)`` throws.
    public func generate(context: Context, plan: GenerationPlan, trace: inout GenerationTrace) throws -> [[Int]] {
        precondition(context.inputCount > 0, "generation needs at least one input")
        return plan.options.numBeams == 1
            ? try greedySearch(context: context, plan: plan, trace: &trace)
            : try beamSearch(context: context, plan: plan, trace: &trace)
    }

    /// ``nextTokenLogits(_:state:)``, recorded in `trace` and checked to be
    /// `[rows, vocabSize]`.
    func step(_ ids: [[Int]], state: inout State, trace: inout GenerationTrace) throws -> Tensor {
        let logits = try nextTokenLogits(ids, state: &state)
        precondition(logits.shape == [ids.count, vocabSize], "logits \(logits.shape) for \(ids.count) rows of a \(vocabSize)-token vocabulary")
        try trace.record(ids)
        return logits
    }
}
