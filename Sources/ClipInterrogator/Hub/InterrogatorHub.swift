import Foundation
import HuggingFaceHub
import NeuralCore

// What the interrogator adds to the generic Hugging Face Hub client: the files its
// models need, the name its label caches are filed under, and who is downloading.

extension HubFileSet {
    /// A CLIP checkpoint: config, BPE tokenizer files and `model.safetensors`
    /// (or its shards), with the preprocessing and tokenizer settings when present.
    public static let clip = HubFileSet([
        .required("config.json"),
        .required("vocab.json"),
        .required("merges.txt"),
        .optional("preprocessor_config.json"),
        .optional("tokenizer_config.json"),
        .optional("special_tokens_map.json"),
        .safetensors(stem: "model"),
    ])

    /// A BLIP captioning checkpoint: config, WordPiece vocabulary and
    /// `model.safetensors` (or its shards), with the preprocessing and tokenizer
    /// settings when present.
    public static let blip = HubFileSet([
        .required("config.json"),
        .required("vocab.txt"),
        .optional("preprocessor_config.json"),
        .optional("tokenizer_config.json"),
        .optional("special_tokens_map.json"),
        .optional("tokenizer.json"),
        .optional("added_tokens.json"),
        .safetensors(stem: "model"),
    ])
}

extension HubEnvironment {
    /// `clip-interrogator-swift`: the `User-Agent` the `interrogate` command sends
    /// (pass it to `HubEnvironment/current(userAgent:)`).
    public static let interrogatorUserAgent = "clip-interrogator-swift"
}

extension ResolvedModel {
    /// The reference's name of the model (`ViT-L-14/openai`) when the repository is
    /// in ``ModelAliases``; used to name label-embedding caches as the reference does.
    public var referenceName: String? {
        repository.flatMap(ModelAliases.referenceName(forRepository:))
    }

    /// The name to file this CLIP model's label-embedding caches under
    /// (``InterrogatorConfiguration/encoderName``): the reference's name when it
    /// has one, so caches interchange with the reference's; else the repository
    /// id; else, for a plain local directory, its name and a fingerprint of its
    /// files (`my-clip-3f9a0c2b71d4`), so that two checkpoints in folders of the
    /// same name, or one retrained in place, never share cache files (a cache
    /// only checks its labels, not the model that embedded them).
    ///
    /// - Returns: the name, for ``InterrogatorConfiguration/encoderName``.
    /// - Throws: when the directory's files cannot be read.
    public func labelCacheName() throws -> String {
        if let name = referenceName ?? repository { return name }
        return "\(directory.lastPathComponent)-\(try Self.fingerprint(of: directory))"
    }

    /// 12 hex digits of a SHA-256 over `config.json` and, for every `.safetensors`
    /// file (by name), its name, size, first and last MiB and 256 evenly spaced
    /// 4 KiB samples: a few MB read however large the checkpoint, and different
    /// whenever retraining or fine-tuning changes the weights.
    static func fingerprint(of directory: URL) throws -> String {
        var hasher = SHA256()
        let config = directory.appendingPathComponent("config.json")
        if let data = try? readRegularFile(config.path, limit: Checkpoint.maximumJSONBytes) { hasher.update(data) }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
        for name in names {
            let handle = try FileHandle(forReadingFrom: directory.appendingPathComponent(name))
            defer { try? handle.close() }
            let size = try handle.seekToEnd()
            hasher.update(Array("\(name):\(size);".utf8))
            let mebibyte: UInt64 = 1 << 20, sample: UInt64 = 4096
            var ranges = [(0, min(size, mebibyte)), (size - min(size, mebibyte), min(size, mebibyte))]
            ranges += (0..<256).map { (size * UInt64($0) / 256, min(sample, size - size * UInt64($0) / 256)) }
            for (offset, length) in ranges {
                try handle.seek(toOffset: offset)
                hasher.update(try handle.read(upToCount: Int(length)) ?? Data())
            }
        }
        return hasher.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
    }
}
