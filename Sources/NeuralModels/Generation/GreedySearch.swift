// Port of transformers/generation/utils.py (GenerationMixin._sample without
// sampling: greedy decoding with per-sequence stopping and pad-filled finished
// rows), transformers 5.24.
import NeuralCore

extension IncrementalDecoder {
    /// Greedy search over sequences reading inputs `0..<inputCount` of `context`
    /// (`_sample` without sampling), starting from `plan.prompt`. Finished
    /// sequences are padded with the pad id until all have finished or the maximum
    /// length is reached; all rows come back with the same length, as
    /// transformers' output tensor.
    func greedySearch(context: Context, plan: GenerationPlan, trace: inout GenerationTrace) throws -> [[Int]] {
        let prompt = plan.prompt
        let batch = context.inputCount
        var sequences = Array(repeating: prompt, count: batch)
        var live = Array(0..<batch) // batch index of each state row
        var state = try makeState(context: context, inputOfRow: live, capacity: plan.maxLength)
        var feed = Array(repeating: prompt, count: batch)
        let vocab = vocabSize
        while true {
            var logits = try step(feed, state: &state, trace: &trace)
            var keep: [Int] = [], nextLive: [Int] = []
            logits.withUnsafeMutableFloats { scores in
                for (r, b) in live.enumerated() {
                    let row = scores.baseAddress! + r * vocab
                    plan.processScores(row, vocab: vocab, sequence: sequences[b])
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
}
