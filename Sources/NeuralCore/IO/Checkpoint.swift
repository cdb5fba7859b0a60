import Foundation

/// A problem with a checkpoint directory's files.
public enum CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A file the model needs is not in the directory.
    case missingFile(path: String)
    /// A JSON file (config, index) could not be decoded; `reason` says why.
    case invalidJSON(path: String, reason: String)

    /// A readable explanation naming the file.
    public var description: String {
        switch self {
        case let .missingFile(path): "missing checkpoint file \(path)"
        case let .invalidJSON(path, reason): "cannot read \(path): \(reason)"
        }
    }
}

/// A Hugging Face checkpoint directory: `config.json` and the weights, either one
/// `model.safetensors` or shards listed by `model.safetensors.index.json`.
public struct Checkpoint: Sendable {
    /// The directory.
    public let directory: URL
    /// The weights, memory-mapped.
    public let weights: WeightStore

    /// Opens the weights in `directory`.
    /// - Throws: ``CheckpointError``, or the safetensors reader's errors.
    public init(directory: URL) throws {
        self.directory = directory
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: single.path) {
            weights = try WeightStore(contentsOf: single)
        } else if FileManager.default.fileExists(atPath: index.path) {
            struct Index: Decodable { let weight_map: [String: String] }
            let map = try Self.decodeJSON(Index.self, at: index).weight_map
            let files = try Set(map.values).sorted().map { name -> SafeTensorsFile in
                let shard = directory.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: shard.path) else { throw CheckpointError.missingFile(path: shard.path) }
                return try SafeTensorsFile(contentsOf: shard)
            }
            weights = try WeightStore(files)
        } else {
            throw CheckpointError.missingFile(path: single.path)
        }
    }

    /// Decodes the JSON file `name` in the directory (default `config.json`).
    public func json<T: Decodable>(_ type: T.Type, file name: String = "config.json") throws -> T {
        try Self.decodeJSON(type, at: directory.appendingPathComponent(name))
    }

    /// Whether the directory has a file called `name`.
    public func hasFile(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, at url: URL) throws -> T {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw CheckpointError.missingFile(path: url.path) }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw CheckpointError.invalidJSON(path: url.path, reason: String(describing: error))
        }
    }
}

extension CheckpointError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
