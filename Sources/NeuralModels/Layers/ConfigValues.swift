// Range checks for the numbers a checkpoint's config files give: every size is
// checked before it sizes anything, so a damaged or hostile config.json or
// preprocessor_config.json fails with the key named instead of trapping or
// allocating without bound.
import Foundation

/// The ranges model sizes read from config files must lie in: far beyond any
/// released CLIP or BLIP (ViT-bigG/14: width 1664, MLP 8192, 48 layers, 224-px
/// images; BLIP-large: 384-px images, 30,524 tokens), and small enough that no
/// product of them overflows or sizes an absurd allocation before the weights'
/// own shapes are checked against them.
public enum ConfigLimits {
    /// `hidden_size`, `intermediate_size`, `projection_dim`, `encoder_hidden_size`.
    public static let width = 1...65_536
    /// `num_hidden_layers`.
    public static let layers = 1...1_024
    /// `num_attention_heads` (also a divisor of the width).
    public static let heads = 1...1_024
    /// `vocab_size`.
    public static let vocabulary = 1...(1 << 24)
    /// `max_position_embeddings`.
    public static let positions = 1...65_536
    /// `image_size`, `patch_size` and the sizes of `preprocessor_config.json`.
    public static let imageSide = 1...16_384
}

extension KeyedDecodingContainer {
    /// The integer at `key` (`fallback` when absent), which must lie in `range`.
    /// - Throws: `DecodingError.dataCorrupted` at `key` otherwise.
    func size(_ key: Key, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        let value = try decodeIfPresent(Int.self, forKey: key) ?? fallback
        try require(range.contains(value), key, "\(value) is outside \(range.lowerBound)...\(range.upperBound)")
        return value
    }

    /// A LayerNorm epsilon at `key` (`fallback` when absent): finite and not negative
    /// (a negative one turns a constant row's variance into a square root of a
    /// negative number).
    func epsilon(_ key: Key, default fallback: Float) throws -> Float {
        let value = try decodeIfPresent(Float.self, forKey: key) ?? fallback
        try require(value.isFinite && value >= 0, key, "\(value) is not a finite, non-negative epsilon")
        return value
    }

    /// Throws `DecodingError.dataCorrupted` at `key` with `message` unless `condition`.
    func require(_ condition: Bool, _ key: Key, _ message: @autoclosure () -> String) throws {
        guard condition else { throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: message()) }
    }
}
