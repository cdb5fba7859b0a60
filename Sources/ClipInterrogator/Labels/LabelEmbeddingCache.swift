import Foundation
import HuggingFaceHub
import NeuralCore

/// Label embeddings cached on disk in clip-interrogator 0.6.0's own format, so
/// caches move freely between the two implementations:
/// `{model name with "/" and "@" replaced by "_"}_{table}.safetensors` holding
/// `embeds` (F16 `[N, D]`, L2-normalised) and `hash` (I8 `[64]`: the character codes
/// of the sha256 hex digest of the labels joined by ",").
public struct LabelEmbeddingCache: Sendable {
    /// The cache directory.
    public let directory: URL
    /// The CLIP model's name as the reference spells it (`ViT-L-14/openai`).
    public let modelName: String

    /// A cache in `directory` for the model called `modelName`.
    public init(directory: URL, modelName: String) {
        self.directory = directory
        self.modelName = modelName
    }

    /// The usual place for label caches: `$XDG_CACHE_HOME/clip-interrogator-swift`,
    /// else `$HOME/.cache/clip-interrogator-swift` (the same rules by which the
    /// Hugging Face cache is placed), else the user's home directory's `.cache`.
    /// - Parameter environment: the environment variables
    ///   (`ProcessInfo.processInfo.environment` for the real ones).
    /// - Returns: the folder (it need not exist yet).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let cacheHome = value("XDG_CACHE_HOME") ?? ((value("HOME") ?? NSHomeDirectory()) + "/.cache")
        return URL(fileURLWithPath: cacheHome, isDirectory: true).appendingPathComponent("clip-interrogator-swift", isDirectory: true)
    }

    /// The file that holds `table`'s embeddings.
    public func fileURL(table: String) -> URL {
        let sanitized = modelName.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "@", with: "_")
        return directory.appendingPathComponent("\(sanitized)_\(table).safetensors")
    }

    /// The reference's label hash: sha256 hex of the UTF-8 of `labels` joined by ",".
    public static func hash(of labels: [String]) -> String {
        SHA256.hexDigest(Array(labels.joined(separator: ",").utf8))
    }

    /// The cached F16 embeddings of `table` when the file exists, is a valid
    /// safetensors file with `embeds` `[labels.count, D]` of finite values and its
    /// `hash` (64 bytes) matches `labels`; nil otherwise (missing, corrupt or
    /// stale: the caller rebuilds).
    public func load(table: String, labels: [String]) -> Tensor? {
        guard let file = try? SafeTensorsFile(contentsOf: fileURL(table: table)),
              let embeds = try? file.tensor("embeds"), let hash = try? file.tensor("hash"),
              embeds.shape.count == 2, embeds.shape[0] == labels.count, embeds.dtype.isFloatStorage,
              hash.dtype == .i8 || hash.dtype == .u8, hash.count == 64
        else { return nil }
        let expected = Array(Self.hash(of: labels).utf8).map(Int64.init)
        guard hash.integers() == expected, embeds.isFinite else { return nil }
        return embeds
    }

    /// Writes `embeddings` (`[labels.count, D]`, any float dtype, stored as F16)
    /// for `table` atomically, creating the directory if needed.
    public func store(table: String, labels: [String], embeddings: Tensor) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let codes = Array(Self.hash(of: labels).utf8).map { Int8(bitPattern: $0) }
        let hash = codes.withUnsafeBytes { Tensor(shape: [codes.count], dtype: .i8, bytes: $0) }
        try SafeTensorsWriter.write(["embeds": embeddings.converted(to: .f16), "hash": hash], to: fileURL(table: table))
    }
}
