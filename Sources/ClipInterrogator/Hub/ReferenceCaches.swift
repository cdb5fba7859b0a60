import Foundation
import HuggingFaceHub

/// The label-embedding caches clip-interrogator publishes for its models
/// (the Hugging Face repository `pharma/ci-preprocess`, which the reference
/// downloads when `download_cache` is on, its default). Using them spares the
/// first run from embedding ~112k labels on the CPU.
public enum ReferenceCaches {
    /// The repository holding the caches.
    public static let repository = "pharma/ci-preprocess"

    /// The reference's six cache tables.
    public static let tables = ["artists", "flavors", "mediums", "movements", "trendings", "negative"]

    /// The folder holding whichever of the model's published caches exist,
    /// downloaded into (or found in) the Hugging Face cache; nil when none could
    /// be had (offline, no network, or none published for this model). A cache
    /// whose labels do not match is ignored later by its hash.
    /// - Parameters:
    ///   - modelName: the CLIP model's label-cache name (`ResolvedModel/labelCacheName()`).
    ///   - resolver: finds the caches in, or downloads them into, the Hugging Face cache.
    /// - Returns: the folder, or nil.
    public static func resolve(modelName: String, with resolver: ModelResolver) -> URL? {
        let cache = LabelEmbeddingCache(directory: URL(fileURLWithPath: "/"), modelName: modelName)
        let files = HubFileSet(tables.map { .optional(cache.fileURL(table: $0).lastPathComponent) })
        return try? resolver.resolve(repository, files: files).directory
    }
}
