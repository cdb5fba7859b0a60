// Port of transformers/generation/utils.py (GenerationMixin._beam_search and its
// helpers _get_top_k_continuations, _get_running_beams_for_next_iteration,
// _update_finished_beams, _check_early_stop_heuristic,
// _beam_search_has_unfinished_sequences), transformers 5.24.
import Foundation
import NeuralCore

/// One finished-hypothesis slot of beam search (`sequences`, `beam_scores`,
/// `is_sent_finished` entries).
private struct Hypothesis {
    var sequence: [Int]
    var score: Float
    var finished: Bool
}

extension IncrementalDecoder {
    /// Beam search (`_beam_search`) over sequences reading inputs `0..<inputCount`
    /// of `context`, starting from `plan.prompt`, returning the best finished
    /// sequence per input, right-padded to a common length with transformers' fill
    /// value (`pad_token_id or eos_token_id`: a pad id of 0 pads with the end token).
    func beamSearch(context: Context, plan: GenerationPlan, trace: inout GenerationTrace) throws -> [[Int]] {
        let prompt = plan.prompt
        let batch = context.inputCount
        let beams = plan.options.numBeams
        let vocab = vocabSize
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

        // Prefill once per input; every beam of an input starts from that row.
        var state = try makeState(context: context, inputOfRow: Array(0..<batch), capacity: plan.maxLength)
        var feed = Array(repeating: prompt, count: batch)
        var curLen = promptLength
        let logProbs = UnsafeMutablePointer<Float>.allocate(capacity: beams * vocab)
        defer { logProbs.deallocate() }

        while true {
            let logits = try step(feed, state: &state, trace: &trace)
            // State row of beam `beam` of the `slot`-th active input (after the
            // prefill, whose one row per input stands for all of its beams).
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
                        plan.processScores(out, vocab: vocab, sequence: running[b][j])
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
        // (`plan.padTokenId` is the decoder's pad id, or the end id when it has none.)
        let fill = plan.endTokenId.map { end in plan.padTokenId.flatMap { $0 != 0 ? $0 : nil } ?? end } ?? -1
        let best = slots.map { $0[0].sequence }
        let length = best.map(\.count).max() ?? promptLength
        return best.map { $0 + Array(repeating: fill, count: length - $0.count) }
    }
}
