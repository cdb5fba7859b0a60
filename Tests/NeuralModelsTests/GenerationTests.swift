import Foundation
import NeuralCore
import NeuralModels
import Synchronization
import XCTest

/// The generic greedy and beam search, run against a scripted toy
/// ``IncrementalDecoder`` whose next-token distribution is a table lookup on the
/// sequence its state holds for a row. Because the logits come from the state's
/// own history (its "KV cache"), a search that forgot to reorder or drop rows with
/// `selectRows` would look up the wrong history and fail: every history the
/// decoder sees is also asserted. Unscripted histories throw, so a search that
/// wanders off the derivation fails loudly.
///
/// Expected outputs are derived in the comments from the scripts alone, with
/// transformers' rules (generation/utils.py, logits_process.py): greedy takes the
/// first largest score; beam search keeps the top `2·numBeams` continuations of
/// accumulated log-probabilities, runs the best `numBeams` that did not end, puts
/// candidates that ended among the top `numBeams` into the finished slots with
/// score `Σ log p / generated length`, and stops an input when every slot is
/// finished and the best running beam, divided by the new length, cannot beat the
/// worst finished slot. Logits are `log p` with `Σ p = 1`, so log-softmax returns
/// them unchanged; margins in the derivations are far above Float rounding.
final class GenerationTests: XCTestCase {
    // Tokens: pad 0, bos 1, end 2, and three words.
    static let pad = 0, bos = 1, end = 2, a = 3, b = 4, c = 5
    static let vocabulary = 6

    /// A distribution: the named probabilities, the remaining mass spread equally
    /// over every other token.
    static func p(_ named: [Int: Double]) -> [Double] {
        let rest = (1 - named.values.reduce(0, +)) / Double(vocabulary - named.count)
        return (0..<vocabulary).map { named[$0] ?? rest }
    }

    /// Script S: greedy and beam search disagree.
    /// Greedy: a (.6 > .39), a (.4), b (.5), end (.9) → [bos a a b end], p = .108.
    /// Beam search (2 beams) finds [bos b c end], p = .39·.97·.9 = .340 (derived in
    /// ``testBeamSearchReordersRowsAndStopsEarly()``).
    static let s: Script = [
        [bos]: p([a: 0.6, b: 0.39]),
        [bos, a]: p([a: 0.4, end: 0.3, c: 0.2]),
        [bos, b]: p([c: 0.97]),
        [bos, b, c]: p([end: 0.9, a: 0.05]),
        [bos, a, a]: p([b: 0.5, end: 0.3, c: 0.1]),
        [bos, a, a, b]: p([end: 0.9]),
        [bos, a, a, c]: p([end: 0.9]),
    ]
    /// Script T: ends soon. Greedy: c (.8), end (.7) → [bos c end].
    static let t: Script = [
        [bos]: p([c: 0.8, a: 0.15]),
        [bos, c]: p([end: 0.7]),
        [bos, a]: p([end: 0.9]),
    ]
    /// Script M: the end token wins early unless a minimum length bans it; the
    /// runner-up at each step is named.
    static let m: Script = [
        [bos]: p([c: 0.8, end: 0.1]),
        [bos, c]: p([end: 0.7, b: 0.2]),
        [bos, c, b]: p([end: 0.6, a: 0.3]),
        [bos, c, b, a]: p([end: 0.9]),
    ]
    /// Script N: repeats the bigram (a, b) unless no-repeat n-gram forbids it.
    static let n: Script = [
        [bos]: p([a: 0.9]),
        [bos, a]: p([b: 0.9]),
        [bos, a, b]: p([a: 0.9]),
        [bos, a, b, a]: p([b: 0.6, end: 0.3]),
        [bos, a, b, a, b]: p([end: 0.9]),
    ]

    func generate(_ decoder: ScriptedDecoder, _ scripts: [Script], prompt: [Int] = [bos], options: GenerationOptions,
                  trace: inout GenerationTrace) throws -> [[Int]] {
        try decoder.generate(context: ScriptedInputs(scripts: scripts), plan: decoder.plan(prompt: prompt, options: options), trace: &trace)
    }

    func generate(_ decoder: ScriptedDecoder, _ scripts: [Script], prompt: [Int] = [bos], options: GenerationOptions) throws -> [[Int]] {
        var trace = GenerationTrace()
        return try generate(decoder, scripts, prompt: prompt, options: options, trace: &trace)
    }

    func steps(_ pairs: [(Int, Int)]) -> [GenerationTrace.Step] { pairs.map { .init(rows: $0.0, positions: $0.1) } }

    // MARK: Greedy

    /// Per-input stopping at the end token, pad-filled finished rows, dropped rows.
    func testGreedyStopsEachInputAtTheEndTokenAndPadsFinishedRows() throws {
        let (bos, end, pad, a, b, c) = (Self.bos, Self.end, Self.pad, Self.a, Self.b, Self.c)
        let options = GenerationOptions(maxNewTokens: 8)
        let decoder = ScriptedDecoder()
        XCTAssertEqual(try generate(decoder, [Self.s], options: options), [[bos, a, a, b, end]])
        XCTAssertEqual(try generate(decoder, [Self.t], options: options), [[bos, c, end]])

        // Both at once: T ends at the second call; its row is dropped from the state
        // (the decoder sees only S's history afterwards) and padded with pad_token_id.
        XCTAssertEqual(try generate(decoder, [Self.s, Self.t], options: options), [[bos, a, a, b, end], [bos, c, end, pad, pad]])
        let calls = Mutex<[Int]>([])
        var trace = GenerationTrace { count in calls.withLock { $0.append(count) } }
        decoder.log.histories = []
        let batch = try generate(decoder, [Self.t, Self.s], options: options, trace: &trace)
        XCTAssertEqual(batch, [[bos, c, end, pad, pad], [bos, a, a, b, end]])
        XCTAssertEqual(decoder.log.histories, [[[bos], [bos]], [[bos, c], [bos, a]], [[bos, a, a]], [[bos, a, a, b]]])
        XCTAssertEqual(trace.steps, steps([(2, 2), (2, 2), (1, 1), (1, 1)]))
        XCTAssertEqual(calls.withLock { $0 }, [1, 2, 3, 4], "onStep after every decoder call")

        // A two-token prompt is fed once (2 positions), then one token per step.
        var promptTrace = GenerationTrace()
        XCTAssertEqual(try generate(decoder, [Self.s], prompt: [bos, a], options: options, trace: &promptTrace), [[bos, a, a, b, end]])
        XCTAssertEqual(promptTrace.steps, steps([(1, 2), (1, 1), (1, 1)]))
    }

    /// The maximum length cuts every row; nothing is padded past it.
    func testGreedyStopsAtTheMaximumLength() throws {
        let (bos, end, a, c) = (Self.bos, Self.end, Self.a, Self.c)
        let decoder = ScriptedDecoder()
        // S: a, a, then the length (1 + 2) is reached; T has ended by then.
        XCTAssertEqual(try generate(decoder, [Self.s, Self.t], options: GenerationOptions(maxNewTokens: 2)),
                       [[bos, a, a], [bos, c, end]])
        // maxLength counts the prompt.
        XCTAssertEqual(try generate(decoder, [Self.s], options: GenerationOptions(maxNewTokens: nil, maxLength: 3)), [[bos, a, a]])
    }

    /// `min_length` counts the prompt; `min_new_tokens` only new tokens.
    func testMinimumLengthBansTheEndToken() throws {
        let (bos, end, a, b, c) = (Self.bos, Self.end, Self.a, Self.b, Self.c)
        let decoder = ScriptedDecoder()
        XCTAssertEqual(try generate(decoder, [Self.m], options: GenerationOptions()), [[bos, c, end]])
        // Min length 4: end is banned at lengths 1, 2, 3, so the runners-up b (.2) and
        // a (.3) are taken; at length 4 end (.9) wins.
        XCTAssertEqual(try generate(decoder, [Self.m], options: GenerationOptions(minLength: 4)), [[bos, c, b, a, end]])
        XCTAssertEqual(try generate(decoder, [Self.m], options: GenerationOptions(minNewTokens: 3)), [[bos, c, b, a, end]])
        // Prompt [bos c]: min length 2 is already met; 1 new token bans end at length 2 only.
        XCTAssertEqual(try generate(decoder, [Self.m], prompt: [bos, c], options: GenerationOptions(minLength: 2)), [[bos, c, end]])
        XCTAssertEqual(try generate(decoder, [Self.m], prompt: [bos, c], options: GenerationOptions(minNewTokens: 1)), [[bos, c, b, end]])
    }

    /// Repetition penalty multiplies negative scores of tokens already present.
    func testRepetitionPenalty() throws {
        let (bos, end, a) = (Self.bos, Self.end, Self.a)
        // S after [bos a]: a scores log .4 = −0.92, end log .3 = −1.20. With penalty 2,
        // a (already present, negative) becomes −1.83 < −1.20: end wins. (Dividing
        // instead would give −0.46 and keep a.) At [bos], a is not yet present.
        XCTAssertEqual(try generate(ScriptedDecoder(), [Self.s], options: GenerationOptions(repetitionPenalty: 2)), [[bos, a, end]])
    }

    /// No-repeat n-gram bans the token that would complete a seen n-gram.
    func testNoRepeatNgram() throws {
        let (bos, end, a, b) = (Self.bos, Self.end, Self.a, Self.b)
        let decoder = ScriptedDecoder()
        XCTAssertEqual(try generate(decoder, [Self.n], options: GenerationOptions()), [[bos, a, b, a, b, end]])
        // Size 2 at [bos a b a]: the bigram (a, b) occurred, so b is banned and end
        // (.3) wins. Earlier steps are unaffected: no earlier bigram starts with the
        // last token.
        XCTAssertEqual(try generate(decoder, [Self.n], options: GenerationOptions(noRepeatNgramSize: 2)), [[bos, a, b, a, end]])
    }

    // MARK: Beam search

    /// Beam search (2 beams) on S, step by step (scores are Σ log p):
    /// 1. From [bos]: a −0.51, b −0.94 run (end is not in the top 4).
    /// 2. [a]+a −1.43, [a]+end −1.71, [a]+c −2.12; [b]+c −0.97. Top 4: [b c], [a a],
    ///    [a end], [a c]. [a end] ended but is 3rd, outside the top 2: dropped.
    ///    Running: [b c] from row 1, [a a] from row 0 → selectRows([1, 0]).
    /// 3. [b c]+end −1.08; [a a]+b −2.12, +end −2.63, +c −3.73; [b c]+a −3.97.
    ///    [b c end] is 1st: finished, −1.08 / 3 = −0.36. Running [a a b], [a a c],
    ///    both from row 1 → selectRows([1, 1]).
    /// 4. [a a b]+end −2.23 → −0.56, [a a c]+end −3.84 → −0.96: both finished.
    ///    Slots: −0.36 [bos b c end], −0.56. The best running beam, −6.03 (a .02
    ///    token after [a a b]) / 4 = −1.51, cannot beat −0.56: stop.
    func testBeamSearchReordersRowsAndStopsEarly() throws {
        let (bos, end, a, b, c) = (Self.bos, Self.end, Self.a, Self.b, Self.c)
        let decoder = ScriptedDecoder()
        var trace = GenerationTrace()
        let ids = try generate(decoder, [Self.s], options: GenerationOptions(maxNewTokens: 8, numBeams: 2), trace: &trace)
        XCTAssertEqual(ids, [[bos, b, c, end]])
        XCTAssertEqual(decoder.log.histories, [[[bos]], [[bos, a], [bos, b]], [[bos, b, c], [bos, a, a]], [[bos, a, a, b], [bos, a, a, c]]])
        XCTAssertEqual(trace.steps, steps([(1, 1), (2, 2), (2, 2), (2, 2)]), "the prompt once per input, then one token per beam")
    }

    /// Several inputs: each stops on its own, and its result is the one it gets
    /// alone, right-padded with `pad_token_id or eos_token_id` (the end token here,
    /// as the pad id is 0).
    ///
    /// T alone (2 beams): 1. [c] −0.22, [a] −1.90. 2. [c end] −0.58, [a end] −2.00
    /// are the top 2 (the rest are ≤ −3.04): both finished, −0.29 and −1.00; the best
    /// running −3.04 / 2 = −1.52 < −1.00: stop after two calls.
    func testBatchedBeamSearchStopsEachInputOnItsOwn() throws {
        let (bos, end, a, b, c) = (Self.bos, Self.end, Self.a, Self.b, Self.c)
        let options = GenerationOptions(maxNewTokens: 8, numBeams: 2)
        let decoder = ScriptedDecoder()
        XCTAssertEqual(try generate(decoder, [Self.t], options: options), [[bos, c, end]])
        decoder.log.histories = []
        var trace = GenerationTrace()
        let batch = try generate(decoder, [Self.s, Self.t], options: options, trace: &trace)
        XCTAssertEqual(batch, [[bos, b, c, end], [bos, c, end, end]])
        // T's beams leave the state after the second call.
        XCTAssertEqual(decoder.log.histories, [[[bos], [bos]], [[bos, a], [bos, b], [bos, c], [bos, a]],
                                               [[bos, b, c], [bos, a, a]], [[bos, a, a, b], [bos, a, a, c]]])
        XCTAssertEqual(trace.steps, steps([(2, 2), (4, 4), (2, 2), (2, 2)]))
        // A nonzero pad id is the fill.
        XCTAssertEqual(try generate(ScriptedDecoder(padTokenId: 5), [Self.s, Self.t], options: options), [[bos, b, c, end], [bos, c, end, 5]])
    }

    /// At the maximum length every candidate counts as finished: S with two new
    /// tokens ends at step 2 (above) with [b c] −0.97 / 2 ahead of [a a] −1.43 / 2.
    func testBeamSearchStopsAtTheMaximumLength() throws {
        let (bos, b, c) = (Self.bos, Self.b, Self.c)
        XCTAssertEqual(try generate(ScriptedDecoder(), [Self.s], options: GenerationOptions(maxNewTokens: 2, numBeams: 2)), [[bos, b, c]])
    }

    // MARK: Plan

    func testPlanResolvesLengthsAndRejectsInvalidOptions() throws {
        let decoder = ScriptedDecoder(maxPositionEmbeddings: 4)
        // No limit given: 20 new tokens, capped at the position table.
        let capped = try decoder.plan(prompt: [Self.bos], options: GenerationOptions(maxNewTokens: nil))
        XCTAssertEqual(capped.maxLength, 4)
        XCTAssertEqual(capped.endTokenId, Self.end)
        XCTAssertEqual(capped.padTokenId, Self.pad)
        XCTAssertEqual(try decoder.plan(prompt: [1, 3], options: GenerationOptions(maxNewTokens: 5, minNewTokens: 2)).maxLength, 7)
        XCTAssertEqual(try decoder.plan(prompt: [1, 3], options: GenerationOptions(maxNewTokens: 5, minNewTokens: 2)).minLength, 4)
        XCTAssertEqual(try ScriptedDecoder(padTokenId: nil).plan(prompt: [1], options: GenerationOptions()).padTokenId, Self.end,
                       "no pad id: the end id pads")
        let invalid: [([Int], GenerationOptions)] = [
            ([], GenerationOptions()),
            ([1], GenerationOptions(numBeams: 0)),
            ([1], GenerationOptions(maxNewTokens: 0)),
            ([1, 3], GenerationOptions(maxNewTokens: nil, maxLength: 2)),
            ([1], GenerationOptions(repetitionPenalty: 0)),
            ([1], GenerationOptions(noRepeatNgramSize: -1)),
        ]
        for (prompt, options) in invalid {
            XCTAssertThrowsError(try decoder.plan(prompt: prompt, options: options), "\(prompt) \(options)") { error in
                guard case .invalidOption = error as? GenerationError else { return XCTFail("\(error)") }
            }
        }
    }
}

/// Per input, the next-token distribution after each history (prompt included).
typealias Script = [[Int]: [Double]]

/// The toy decoder's inputs: one script per input.
struct ScriptedInputs: DecoderContext {
    var scripts: [Script]
    var inputCount: Int { scripts.count }
}

/// The toy decoder's state: per row, every token fed so far (its "cache") and
/// the input it reads.
struct ScriptedState: DecoderState {
    let scripts: [Script]
    var histories: [[Int]]
    var inputOfRow: [Int]
    var rows: Int { histories.count }

    mutating func selectRows(_ indices: [Int]) {
        histories = indices.map { histories[$0] }
        inputOfRow = indices.map { inputOfRow[$0] }
    }
}

/// What the toy decoder saw: per call, each row's history after the new tokens.
final class ScriptedLog {
    var histories: [[[Int]]] = []
}

enum ScriptedDecoderError: Error {
    case unscripted([Int])
}

/// A decoder whose logits are `log p` of its script's distribution for the
/// history its state holds for each row.
struct ScriptedDecoder: IncrementalDecoder {
    var vocabSize = GenerationTests.vocabulary
    var endTokenId: Int? = GenerationTests.end
    var padTokenId: Int? = GenerationTests.pad
    var maxPositionEmbeddings = 16
    let log = ScriptedLog()

    init(padTokenId: Int? = GenerationTests.pad, maxPositionEmbeddings: Int = 16) {
        self.padTokenId = padTokenId
        self.maxPositionEmbeddings = maxPositionEmbeddings
    }

    func makeState(context: ScriptedInputs, inputOfRow: [Int], capacity: Int) -> ScriptedState {
        ScriptedState(scripts: context.scripts, histories: inputOfRow.map { _ in [] }, inputOfRow: inputOfRow)
    }

    func nextTokenLogits(_ ids: [[Int]], state: inout ScriptedState) throws -> Tensor {
        precondition(ids.count == state.rows)
        var logits: [Float] = []
        for r in 0..<state.rows {
            state.histories[r] += ids[r]
            guard state.histories[r].count <= maxPositionEmbeddings,
                  let distribution = state.scripts[state.inputOfRow[r]][state.histories[r]] else {
                throw ScriptedDecoderError.unscripted(state.histories[r])
            }
            logits += distribution.map { Float(Foundation.log($0)) }
        }
        log.histories.append(state.histories)
        return Tensor(shape: [state.rows, vocabSize], scalars: logits)
    }
}
