import Foundation
import NeuralCore
import NeuralModels

/// Loads label tables from the cache or builds them with an encoder, reporting
/// progress.
struct LabelTableBuilder {
    let encoder: any ImageTextEncoder
    let configuration: InterrogatorConfiguration
    /// Receives progress; throws to stop between batches (cancellation).
    let report: (InterrogatorProgress) throws -> Void

    /// The table of `list`: from the user cache, else from the published caches,
    /// else embedded (in batches of ``LabelTable/encodingBatch``, reporting
    /// progress from 0 done, so a receiver can time the rate) and stored in the
    /// user cache. A cache of another embedding width
    /// (another model filed under the same name) is ignored.
    func table(_ list: LabelSet.List) throws -> LabelTable {
        let (name, labels) = (list.name, list.labels)
        let dimension = encoder.embeddingDimension
        let cache = configuration.cacheDirectory.map { LabelEmbeddingCache(directory: $0, modelName: configuration.encoderName) }
        let published = configuration.precomputedCacheDirectory.map {
            LabelEmbeddingCache(directory: $0, modelName: configuration.encoderName)
        }
        for source in [cache, published] {
            if let cached = source?.load(table: name, labels: labels), cached.shape[1] == dimension {
                return LabelTable(name: name, labels: labels, embeddings: cached)
            }
        }
        var embeddings = Tensor(zeros: [labels.count, dimension])
        try report(.buildingLabelTable(name: name, done: 0, total: labels.count))
        try embeddings.withUnsafeMutableFloats { rows in
            for start in stride(from: 0, to: labels.count, by: LabelTable.encodingBatch) {
                let end = min(start + LabelTable.encodingBatch, labels.count)
                try encoder.textEmbeddings(texts: Array(labels[start..<end])).copyFloats(into: rows.baseAddress! + start * dimension)
                try report(.buildingLabelTable(name: name, done: end, total: labels.count))
            }
        }
        // The reference keeps (and ranks with) the F16-rounded embeddings, cached or not.
        let rounded = embeddings.converted(to: .f16)
        try cache?.store(table: name, labels: labels, embeddings: rounded)
        return LabelTable(name: name, labels: labels, embeddings: rounded)
    }
}
