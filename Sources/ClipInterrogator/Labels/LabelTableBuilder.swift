import Foundation
import NeuralCore
import NeuralModels

/// Loads label tables from the cache or builds them with an encoder, reporting
/// progress. One builder builds an interrogator's tables: when the cache cannot
/// be written it warns once (``InterrogatorWarning/cacheNotWritten(directory:reason:)``),
/// stops trying, and the tables it built are kept in memory all the same.
final class LabelTableBuilder {
    let encoder: any ImageTextEncoder
    let configuration: InterrogatorConfiguration
    /// Receives progress; throws to stop between batches (cancellation).
    let report: (InterrogatorProgress) throws -> Void
    /// Whether storing to the user cache has failed (then it is not tried again).
    private var cacheUnwritable = false

    init(encoder: any ImageTextEncoder, configuration: InterrogatorConfiguration,
         report: @escaping (InterrogatorProgress) throws -> Void) {
        self.encoder = encoder
        self.configuration = configuration
        self.report = report
    }

    /// The table of `list`: from the user cache, else from the published caches,
    /// else embedded (in batches of ``LabelTable/encodingBatch``, reporting
    /// progress from 0 done, so a receiver can time the rate) and stored in the
    /// user cache. A cache of another embedding width (another model filed under
    /// the same name) or with non-finite values is ignored.
    /// - Throws: the encoder's errors, what `report` throws (a cancellation),
    ///   `NonFiniteOutputError` when the embeddings are not finite numbers.
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
        try NonFiniteOutputError.check(rounded, "the text embeddings of label table '\(name)'")
        if let cache, !cacheUnwritable {
            do {
                try cache.store(table: name, labels: labels, embeddings: rounded)
            } catch {
                cacheUnwritable = true
                configuration.warnings?(.cacheNotWritten(directory: cache.directory.path, reason: String(describing: error)))
            }
        }
        return LabelTable(name: name, labels: labels, embeddings: rounded)
    }
}
