import Synchronization

/// A weight source that makes every tensor a model asks for, with the shape it
/// expects, from deterministic pseudo-random values (LayerNorm weights 1, other
/// values uniform with standard deviation 0.02): full-size models without a
/// checkpoint, for benchmarks. ``synthesized`` returns what was handed out, e.g.
/// to write it to disk as a checkpoint.
public final class SyntheticWeights: WeightSource {
    /// The seed every tensor's values derive from (with its key).
    public let seed: UInt64
    private let made = Mutex<[String: Tensor]>([:])

    /// A source whose values derive from `seed`.
    public init(seed: UInt64) {
        self.seed = seed
    }

    /// The tensors made so far, by key.
    public var synthesized: [String: Tensor] { made.withLock { $0 } }

    /// The keys made so far.
    public var keys: [String] { made.withLock { $0.keys.sorted() } }

    /// Always true: any key can be made.
    public func contains(_ key: String) -> Bool { true }

    /// The shape of a tensor already made; nil before (any shape can be made).
    public func shape(of key: String) -> [Int]? { made.withLock { $0[key]?.shape } }

    /// The tensor at `key` with `shape` (made on first request, then the same one).
    public func tensor(_ key: String, shape: [Int]?) throws -> Tensor {
        guard let shape else { throw WeightError.missing(key: key, expectedShape: nil) }
        return made.withLock { made in
            if let existing = made[key] { return existing }
            let tensor = Self.values(key: key, shape: shape, seed: seed)
            made[key] = tensor
            return tensor
        }
    }

    /// A tensor of `shape` filled like the synthetic weights (not recorded).
    public func tensor(shape: [Int]) -> Tensor {
        Self.values(key: "", shape: shape, seed: seed)
    }

    private static func values(key: String, shape: [Int], seed: UInt64) -> Tensor {
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
}
