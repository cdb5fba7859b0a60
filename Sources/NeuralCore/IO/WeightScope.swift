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

/// The tensors of one checkpoint (one or more safetensors files), with a record of
/// which keys the model has consumed, for strict loading.
public final class WeightStore: Sendable {
    private let files: [String: SafeTensorsFile]
    private let consumed = Mutex<Set<String>>([])
    /// For synthetic stores, the seed; nil for file-backed stores.
    private let syntheticSeed: UInt64?
    /// For synthetic stores, every tensor handed out so far.
    private let made = Mutex<[String: Tensor]>([:])

    /// A store over the tensors of `files`.
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
        syntheticSeed = nil
    }

    /// A synthetic checkpoint for benchmarks: every key a model asks for exists
    /// with the shape it expects, filled with deterministic pseudo-random values
    /// (LayerNorm weights 1, other values uniform with standard deviation 0.02).
    /// ``synthesized`` returns what was handed out, e.g. to write it to disk.
    public init(syntheticSeed seed: UInt64) {
        files = [:]
        syntheticSeed = seed
    }

    /// The tensors a synthetic store has made so far, by key.
    public var synthesized: [String: Tensor] { made.withLock { $0 } }

    /// Whether the checkpoint has `key` (always, for a synthetic store).
    public func contains(_ key: String) -> Bool { syntheticSeed != nil || files[key] != nil }

    /// The tensor at `key`, checked to have `shape`, marked consumed.
    /// - Throws: ``WeightError/missing(key:expectedShape:)`` or
    ///   ``WeightError/shapeMismatch(key:expected:found:)``.
    public func tensor(_ key: String, expecting shape: [Int]) throws -> Tensor {
        if let syntheticSeed {
            return made.withLock { made in
                if let existing = made[key] { return existing }
                let tensor = Self.pseudoRandom(key: key, shape: shape, seed: syntheticSeed)
                made[key] = tensor
                return tensor
            }
        }
        guard let found = self.shape(of: key) else { throw WeightError.missing(key: key, expectedShape: shape) }
        guard found == shape else { throw WeightError.shapeMismatch(key: key, expected: shape, found: found) }
        return try tensor(key)
    }

    /// A tensor of `shape` filled like the synthetic weights (not recorded).
    public func syntheticTensor(shape: [Int]) -> Tensor {
        Self.pseudoRandom(key: "", shape: shape, seed: syntheticSeed ?? 0)
    }

    private static func pseudoRandom(key: String, shape: [Int], seed: UInt64) -> Tensor {
        let isNormWeight = key.lowercased().contains("norm") && key.hasSuffix(".weight")
        var state = seed ^ key.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
        return Tensor(shape: shape) { out in
            for i in 0..<shape.reduce(1, *) {
                if isNormWeight { out[i] = 1; continue }
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let unit = Float(state >> 40) / Float(1 << 24) // [0, 1)
                out[i] = (unit * 2 - 1) * 0.0346 // uniform, standard deviation 0.02
            }
        }
    }

    /// A store over one safetensors file at `url`.
    public convenience init(contentsOf url: URL) throws {
        try self.init([SafeTensorsFile(contentsOf: url)])
    }

    /// Every key in the checkpoint.
    public var keys: [String] { files.keys.sorted() }

    /// The shape of `key`, if present.
    public func shape(of key: String) -> [Int]? { files[key]?.entries[key]?.shape }

    /// The tensor at `key` (a zero-copy view), marked consumed.
    /// - Throws: ``WeightError/missing(key:expectedShape:)``.
    public func tensor(_ key: String) throws -> Tensor {
        guard let file = files[key] else { throw WeightError.missing(key: key, expectedShape: nil) }
        consumed.withLock { _ = $0.insert(key) }
        return try file.tensor(key)
    }

    /// Marks keys as deliberately unused (buffers such as `position_ids`, or tied
    /// copies), so that ``verifyAllConsumed()`` accepts them.
    public func markConsumed(where predicate: (String) -> Bool) {
        let matching = files.keys.filter(predicate)
        consumed.withLock { $0.formUnion(matching) }
    }

    /// The keys no part of the model has asked for yet, with their shapes.
    public var unconsumed: [String: [Int]] {
        let used = consumed.withLock { $0 }
        var result: [String: [Int]] = [:]
        for key in files.keys where !used.contains(key) { result[key] = shape(of: key) }
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
