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
/// Embeddings are held as F32 widened from F16, exactly as the reference holds them
/// on a CPU (its cache stores F16 and it converts with `astype(np.float32)`).
public struct LabelTable: Sendable {
    /// The cache name of the table (`artists`, `flavors`, …); empty for merged tables.
    public let name: String
    /// The labels.
    public let labels: [String]
    /// `[labels.count, D]`, F32.
    public let embeddings: Tensor

    /// A table of `labels` with their `embeddings` `[N, D]` (any float dtype).
    public init(name: String, labels: [String], embeddings: Tensor) {
        precondition(embeddings.shape.count == 2 && embeddings.shape[0] == labels.count,
                     "\(labels.count) labels for embeddings \(embeddings.shape)")
        self.name = name
        self.labels = labels
        self.embeddings = embeddings.asF32()
    }

    /// The tables' labels and embeddings concatenated in order (`_merge_tables`).
    public init(merging tables: [LabelTable]) {
        let dimension = tables.first?.embeddings.shape[1] ?? 0
        let labels = tables.flatMap(\.labels)
        let merged = Tensor(shape: [labels.count, dimension]) { out in
            var offset = 0
            for table in tables {
                table.embeddings.copyFloats(into: out + offset * dimension)
                offset += table.labels.count
            }
        }
        self.init(name: "", labels: labels, embeddings: merged)
    }

    /// The embedding width.
    public var dimension: Int { embeddings.shape[1] }

    /// Cosine similarity of every label with `image` (an L2-normalised embedding).
    public func similarities(to image: [Float]) -> [Float] {
        similarities(to: image, rows: 0..<labels.count)
    }

    func similarities(to image: [Float], rows: Range<Int>) -> [Float] {
        precondition(image.count == dimension, "image embedding of \(image.count), table of \(dimension)")
        var result = [Float](repeating: 0, count: rows.count)
        guard !rows.isEmpty else { return result }
        withExtendedLifetime(embeddings) {
            sgemm(m: rows.count, n: 1, k: dimension, a: embeddings.unsafeFloatPointer + rows.lowerBound * dimension,
                  lda: dimension, b: image, ldb: 1, c: &result, ldc: 1)
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
            if labels.count <= chunkSize {
                return Self.topIndices(similarities(to: image), count: topCount, reverse: reverse)
            }
            let chunks = (labels.count + chunkSize - 1) / chunkSize
            let keep = chunkSize / chunks
            var survivors: [Int] = [], survivorScores: [Float] = []
            for chunk in 0..<chunks {
                let rows = (chunk * chunkSize)..<min((chunk + 1) * chunkSize, labels.count)
                let scores = similarities(to: image, rows: rows)
                for index in Self.topIndices(scores, count: keep, reverse: reverse) {
                    survivors.append(rows.lowerBound + index)
                    survivorScores.append(scores[index])
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
