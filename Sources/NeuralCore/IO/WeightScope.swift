import Foundation
import Synchronization

/// A problem found while loading a model's weights, naming the full key.
public enum WeightError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The model needs `key` but no checkpoint file has it.
    case missing(key: String, expectedShape: [Int]?)
    /// `key` exists with another shape than the model expects.
    case shapeMismatch(key: String, expected: [Int], found: [Int])
    /// `key` holds a dtype the model cannot use there.
    case unsupportedDType(key: String, dtype: DType)
    /// Checkpoint tensors that no part of the model consumed (strict loading).
    case unused(keys: [String: [Int]])
    /// The same key appears in more than one checkpoint file.
    case duplicate(key: String, files: [String])

    /// A readable explanation naming every key involved and both shapes.
    public var description: String {
        switch self {
        case let .missing(key, shape):
            return "missing weight '\(key)'" + (shape.map { " (expected shape \($0))" } ?? "")
        case let .shapeMismatch(key, expected, found):
            return "weight '\(key)' has shape \(found), expected \(expected)"
        case let .unsupportedDType(key, dtype):
            return "weight '\(key)' has unsupported dtype \(dtype.rawValue)"
        case let .unused(keys):
            let list = keys.sorted { $0.key < $1.key }.map { "'\($0.key)' \($0.value)" }.joined(separator: ", ")
            return "\(keys.count) checkpoint tensor(s) not used by the model: \(list)"
        case let .duplicate(key, files):
            return "weight '\(key)' appears in several files: \(files.joined(separator: ", "))"
        }
    }
}

/// Where a ``WeightStore``'s tensors come from: checkpoint files
/// (``SafeTensorsWeights``), or tensors made on demand (``SyntheticWeights``).
public protocol WeightSource: Sendable {
    /// Every key the source can list (for strict loading's unused-key report).
    var keys: [String] { get }
    /// Whether the source has `key`.
    func contains(_ key: String) -> Bool
    /// The stored shape of `key`; nil when absent or not fixed in advance.
    func shape(of key: String) -> [Int]?
    /// The tensor at `key`, which the model expects to have `shape`.
    func tensor(_ key: String, shape: [Int]?) throws -> Tensor
}

/// The tensors of one or more safetensors files (a checkpoint, possibly sharded),
/// as zero-copy views of the memory-mapped files.
public struct SafeTensorsWeights: WeightSource {
    private let files: [String: SafeTensorsFile]

    /// The tensors of `files`.
    /// - Throws: ``WeightError/duplicate(key:files:)`` when two files share a key.
    public init(_ files: [SafeTensorsFile]) throws {
        var byKey: [String: SafeTensorsFile] = [:]
        for file in files {
            for name in file.entries.keys {
                if let other = byKey[name] { throw WeightError.duplicate(key: name, files: [other.path, file.path]) }
                byKey[name] = file
            }
        }
        self.files = byKey
    }

    /// Every key in the files, sorted.
    public var keys: [String] { files.keys.sorted() }

    /// Whether a file has `key`.
    public func contains(_ key: String) -> Bool { files[key] != nil }

    /// The stored shape of `key`.
    public func shape(of key: String) -> [Int]? { files[key]?.entries[key]?.shape }

    /// The stored tensor at `key` (its shape is checked by the store).
    public func tensor(_ key: String, shape: [Int]?) throws -> Tensor {
        guard let file = files[key] else { throw WeightError.missing(key: key, expectedShape: shape) }
        return try file.tensor(key)
    }
}

/// The tensors of one checkpoint, with a record of which keys the model has
/// consumed, for strict loading.
public final class WeightStore: Sendable {
    /// Where the tensors come from.
    public let source: any WeightSource
    private let consumed = Mutex<Set<String>>([])

    /// A store over `source`.
    public init(source: any WeightSource) {
        self.source = source
    }

    /// A store over the tensors of `files`.
    /// - Throws: ``WeightError/duplicate(key:files:)`` when two files share a key.
    public convenience init(_ files: [SafeTensorsFile]) throws {
        self.init(source: try SafeTensorsWeights(files))
    }

    /// A store over one safetensors file at `url`.
    public convenience init(contentsOf url: URL) throws {
        try self.init([SafeTensorsFile(contentsOf: url)])
    }

    /// Whether the checkpoint has `key`.
    public func contains(_ key: String) -> Bool { source.contains(key) }

    /// Every key in the checkpoint.
    public var keys: [String] { source.keys }

    /// The shape of `key`, if present.
    public func shape(of key: String) -> [Int]? { source.shape(of: key) }

    /// The tensor at `key`, checked to have `shape`, marked consumed.
    /// - Throws: ``WeightError/missing(key:expectedShape:)`` or
    ///   ``WeightError/shapeMismatch(key:expected:found:)``.
    public func tensor(_ key: String, expecting shape: [Int]) throws -> Tensor {
        guard source.contains(key) else { throw WeightError.missing(key: key, expectedShape: shape) }
        if let found = source.shape(of: key), found != shape {
            throw WeightError.shapeMismatch(key: key, expected: shape, found: found)
        }
        return try take(key, shape: shape)
    }

    /// The tensor at `key` as stored, marked consumed.
    /// - Throws: ``WeightError/missing(key:expectedShape:)``.
    public func tensor(_ key: String) throws -> Tensor {
        guard source.contains(key) else { throw WeightError.missing(key: key, expectedShape: nil) }
        return try take(key, shape: nil)
    }

    private func take(_ key: String, shape: [Int]?) throws -> Tensor {
        consumed.withLock { _ = $0.insert(key) }
        return try source.tensor(key, shape: shape)
    }

    /// Marks keys as deliberately unused (buffers such as `position_ids`, or tied
    /// copies), so that ``verifyAllConsumed()`` accepts them.
    public func markConsumed(where predicate: (String) -> Bool) {
        let matching = source.keys.filter(predicate)
        consumed.withLock { $0.formUnion(matching) }
    }

    /// The keys no part of the model has asked for yet, with their shapes.
    public var unconsumed: [String: [Int]] {
        let used = consumed.withLock { $0 }
        var result: [String: [Int]] = [:]
        for key in source.keys where !used.contains(key) { result[key] = source.shape(of: key) ?? [] }
        return result
    }

    /// Strict loading: throws ``WeightError/unused(keys:)`` naming every checkpoint
    /// tensor the model has not consumed.
    public func verifyAllConsumed() throws {
        let left = unconsumed
        if !left.isEmpty { throw WeightError.unused(keys: left) }
    }
}

/// A view of a ``WeightStore`` under a key prefix, mirroring the Hugging Face
/// module tree: `weights.scoped("encoder.layers.3").tensor("mlp.fc1.weight", shape: [O, I])`.
public struct WeightScope: Sendable {
    /// The checkpoint.
    public let store: WeightStore
    /// The prefix, without a trailing dot (empty at the root).
    public let prefix: String

    /// The root scope of `store`.
    public init(_ store: WeightStore, prefix: String = "") {
        self.store = store
        self.prefix = prefix
    }

    /// The full checkpoint key of `name` in this scope.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    /// A scope one or more levels deeper (`"encoder.layers.3"`).
    public func scoped(_ name: String) -> WeightScope { WeightScope(store, prefix: key(name)) }

    /// Whether the checkpoint has `name` in this scope.
    public func contains(_ name: String) -> Bool { store.contains(key(name)) }

    /// The tensor `name`, converted to F32 (a zero-copy view when the file already
    /// stores aligned F32), after checking its shape.
    /// - Throws: ``WeightError`` naming the full key (and both shapes on a mismatch).
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        let full = key(name)
        let tensor = try store.tensor(full, expecting: shape)
        guard tensor.dtype.isFloatStorage else { throw WeightError.unsupportedDType(key: full, dtype: tensor.dtype) }
        return tensor.asF32()
    }

    /// Like ``tensor(_:shape:)`` but returns nil when the key is absent (for
    /// optional biases and tied weights).
    public func tensorIfPresent(_ name: String, shape: [Int]) throws -> Tensor? {
        contains(name) ? try tensor(name, shape: shape) : nil
    }
}

extension WeightError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
