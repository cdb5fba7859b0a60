import Foundation

/// A problem with a checkpoint directory's files.
public enum CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A file the model needs is not in the directory.
    case missingFile(path: String)
    /// A JSON file (config, index) could not be decoded; `reason` says why.
    case invalidJSON(path: String, reason: String)
    /// A value in a JSON file is missing, of the wrong type or out of range:
    /// `key` is its dotted path (`vision_config.image_size`).
    case invalidValue(path: String, key: String, reason: String)

    /// A readable explanation naming the file (and the key).
    public var description: String {
        switch self {
        case let .missingFile(path): "missing checkpoint file \(path)"
        case let .invalidJSON(path, reason): "cannot read \(path): \(reason)"
        case let .invalidValue(path, key, reason): "\(path): \(key): \(reason)"
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
                // Shards are files of this folder: a name that climbs out of it
                // ("../…", "/…") or into a subfolder is not a checkpoint's.
                guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                    throw CheckpointError.invalidValue(path: index.path, key: "weight_map",
                                                       reason: "shard '\(name)' is not a file name in the checkpoint's folder")
                }
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

    /// The largest JSON file a checkpoint may hold (configs, indexes,
    /// preprocessor settings; real ones are a few KB).
    public static let maximumJSONBytes = 16 << 20

    /// Decodes the JSON file at `url` as `type`.
    /// - Throws: ``CheckpointError``: the file missing, not JSON, larger than
    ///   ``maximumJSONBytes``, or a value rejected (``CheckpointError/invalidValue(path:key:reason:)``
    ///   names its key).
    public static func decodeJSON<T: Decodable>(_ type: T.Type, at url: URL) throws -> T {
        let data: Data
        do {
            data = try readRegularFile(url.path, limit: maximumJSONBytes)
        } catch let error as FileError where error.code == ENOENT {
            throw CheckpointError.missingFile(path: url.path)
        } catch {
            throw CheckpointError.invalidJSON(path: url.path, reason: String(describing: error))
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw describe(error, path: url.path)
        } catch {
            throw CheckpointError.invalidJSON(path: url.path, reason: String(describing: error))
        }
    }

    /// A decoding error as a ``CheckpointError`` about the file at `path`,
    /// naming the key it is about.
    public static func describe(_ error: DecodingError, path: String) -> CheckpointError {
        func key(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String {
            (context.codingPath + (last.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue }
                .joined(separator: ".")
        }
        switch error {
        case let .dataCorrupted(context) where context.codingPath.isEmpty:
            return .invalidJSON(path: path, reason: context.debugDescription)
        case let .dataCorrupted(context):
            return .invalidValue(path: path, key: key(context), reason: context.debugDescription)
        case let .typeMismatch(type, context):
            return .invalidValue(path: path, key: key(context), reason: "expected \(type): \(context.debugDescription)")
        case let .valueNotFound(type, context):
            return .invalidValue(path: path, key: key(context), reason: "expected \(type), found null")
        case let .keyNotFound(missing, context):
            return .invalidValue(path: path, key: key(context, missing), reason: "missing")
        @unknown default:
            return .invalidJSON(path: path, reason: String(describing: error))
        }
    }
}

extension CheckpointError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
