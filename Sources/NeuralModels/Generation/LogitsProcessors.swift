// Port of transformers/generation/logits_process.py (RepetitionPenaltyLogitsProcessor,
// NoRepeatNGramLogitsProcessor, MinLengthLogitsProcessor,
// MinNewTokensLengthLogitsProcessor) in the order
// transformers/generation/utils.py's _get_logits_processor builds them, transformers
// 5.24; and the score operations greedy and beam search use (torch.argmax,
// log_softmax, torch.topk).
import Foundation

extension GenerationPlan {
    /// The logits processors transformers builds for these options, in its order
    /// (repetition penalty, no-repeat n-gram, minimum length), applied to one row
    /// of `vocab` scores for a sequence `sequence` (prompt included).
    func processScores(_ scores: UnsafeMutablePointer<Float>, vocab: Int, sequence: [Int]) {
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
        if let end = endTokenId, minLength > 0, sequence.count < minLength, end >= 0, end < vocab {
            scores[end] = -.infinity
        }
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
