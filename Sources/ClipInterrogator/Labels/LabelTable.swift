import Foundation
import NeuralCore

/// How a table's labels are ranked against an image.
public enum RankingMethod: Sendable, Equatable {
    /// The reference's method (so prompts match it): tables longer than
    /// `chunkSize` are split into ⌈N / chunkSize⌉ chunks, each keeps its top
    /// ⌊chunkSize / chunks⌋ labels, and the final top-k is taken over those
    /// survivors, always by highest similarity (the reference does not reverse
    /// the final pass, even in negative mode).
    case chunked(chunkSize: Int)
    /// The true top-k over the whole table.
    case exact
}

/// Labels and their L2-normalised CLIP text embeddings, ranked against images
/// (clip-interrogator's `LabelTable`).
///
/// Embeddings stay in the storage type they came in (F16 from the cache, as the
/// reference stores them) and are widened to F32 block by block while scoring, so
/// the ~112k reference labels cost their F16 size in memory; the scores equal the
/// reference's, which widens the whole table with `astype(np.float32)`. Merged
/// tables share their parts' storage.
public struct LabelTable: Sendable {
    /// The cache name of the table (`artists`, `flavors`, …); empty for merged tables.
    public let name: String
    /// The labels.
    public let labels: [String]
    /// The embeddings, `[n, D]` per segment; the segments stacked are `[labels.count, D]`.
    public let segments: [Tensor]

    /// A table of `labels` with their `embeddings` `[N, D]` (any float dtype).
    public init(name: String, labels: [String], embeddings: Tensor) {
        precondition(embeddings.shape.count == 2 && embeddings.shape[0] == labels.count,
                     "\(labels.count) labels for embeddings \(embeddings.shape)")
        self.name = name
        self.labels = labels
        segments = [embeddings]
    }

    /// The tables' labels and embeddings concatenated in order (`_merge_tables`),
    /// without copying the embeddings.
    public init(merging tables: [LabelTable]) {
        name = ""
        labels = tables.flatMap(\.labels)
        segments = tables.flatMap(\.segments)
    }

    /// The embedding width.
    public var dimension: Int { segments.first?.shape[1] ?? 0 }

    /// Labels are embedded (and table-building progress reported) in batches of
    /// this many.
    public static let encodingBatch = 1024

    /// Cosine similarity of every label with `image` (an L2-normalised embedding).
    public func similarities(to image: [Float]) -> [Float] {
        precondition(segments.isEmpty || image.count == dimension, "image embedding of \(image.count), table of \(dimension)")
        var result = [Float](repeating: 0, count: labels.count)
        var offset = 0
        result.withUnsafeMutableBufferPointer { out in
            for segment in segments {
                rowDotProducts(out.baseAddress! + offset, segment, image)
                offset += segment.shape[0]
            }
        }
        return result
    }

    /// Indices of the `topCount` best labels for `image`, best first (with
    /// `reverse`, the least similar), by `method`.
    public func rank(_ image: [Float], topCount: Int, reverse: Bool = false, method: RankingMethod) -> [Int] {
        switch method {
        case .exact:
            return Self.topIndices(similarities(to: image), count: topCount, reverse: reverse)
        case let .chunked(chunkSize):
            let scores = similarities(to: image)
            if labels.count <= chunkSize {
                return Self.topIndices(scores, count: topCount, reverse: reverse)
            }
            let chunks = (labels.count + chunkSize - 1) / chunkSize
            let keep = chunkSize / chunks
            var survivors: [Int] = [], survivorScores: [Float] = []
            for chunk in 0..<chunks {
                let rows = (chunk * chunkSize)..<min((chunk + 1) * chunkSize, labels.count)
                for index in Self.topIndices(Array(scores[rows]), count: keep, reverse: reverse) {
                    survivors.append(rows.lowerBound + index)
                    survivorScores.append(scores[rows.lowerBound + index])
                }
            }
            return Self.topIndices(survivorScores, count: topCount, reverse: false).map { survivors[$0] }
        }
    }

    /// The labels of ``rank(_:topCount:reverse:method:)``.
    public func rankLabels(_ image: [Float], topCount: Int, reverse: Bool = false, method: RankingMethod) -> [String] {
        rank(image, topCount: topCount, reverse: reverse, method: method).map { labels[$0] }
    }

    /// The indices of the `count` largest scores (smallest with `reverse`), in
    /// order; ties go to the lower index.
    static func topIndices(_ scores: [Float], count: Int, reverse: Bool) -> [Int] {
        let k = min(count, scores.count)
        guard k > 0 else { return [] }
        func better(_ a: Int, _ b: Int) -> Bool {
            let (x, y) = reverse ? (-scores[a], -scores[b]) : (scores[a], scores[b])
            return x > y || (x == y && a < b)
        }
        if k * 8 >= scores.count { return Array(scores.indices.sorted(by: better).prefix(k)) }
        // Partial selection: keep a sorted window of the best k.
        var best = Array(scores.indices.prefix(k)).sorted(by: better)
        for i in k..<scores.count where better(i, best[k - 1]) {
            var low = 0, high = k - 1
            while low < high {
                let middle = (low + high) / 2
                if better(i, best[middle]) { high = middle } else { low = middle + 1 }
            }
            best.insert(i, at: low)
            best.removeLast()
        }
        return best
    }
}
