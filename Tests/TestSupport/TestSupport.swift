import Foundation
import XCTest

// Helpers shared by the test targets.

/// The committed fixture files, found relative to this source file.
public enum Fixtures {
    /// `Tests/Fixtures`.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// A file or folder under `Tests/Fixtures`.
    public static func url(_ path: String) -> URL { root.appendingPathComponent(path) }
}

/// A deterministic pseudo-random generator (SplitMix64) so sweeps are reproducible.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    /// A generator starting from `seed`.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == Float {
    /// `count` values uniform in `range`.
    public static func random(_ count: Int, in range: ClosedRange<Float> = -2...2, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: range, using: &generator) }
    }
}

/// Normalised mean squared error `Σ(a−b)² / Σb²` (0 when both are all zero).
public func normalizedMSE(_ actual: [Float], _ expected: [Float]) -> Double {
    precondition(actual.count == expected.count)
    var error = 0.0, energy = 0.0
    for (a, b) in zip(actual, expected) {
        error += Double(a - b) * Double(a - b)
        energy += Double(b) * Double(b)
    }
    return energy == 0 ? error : error / energy
}

/// Asserts `max |actual − expected| ≤ tolerance`, printing the first values and
/// the worst index on failure.
public func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var worst: Float = 0, worstIndex = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        if !(d <= worst) { worst = d; worstIndex = i }
    }
    if !(worst <= tolerance) {
        XCTFail("""
            \(what): max |Δ| = \(worst) at \(worstIndex) (actual \(actual[worstIndex]), expected \(expected[worstIndex])) > \(tolerance)
            first actual:   \(actual.prefix(6))
            first expected: \(expected.prefix(6))
            """, file: file, line: line)
    }
}

/// Asserts the normalised MSE of an optimised kernel against its naive twin.
public func assertNMSE(_ actual: [Float], _ expected: [Float], limit: Double = 1e-10, _ what: String,
                file: StaticString = #filePath, line: UInt = #line) {
    let e = normalizedMSE(actual, expected)
    XCTAssert(e <= limit, "\(what): normalised MSE \(e) > \(limit); first \(actual.prefix(4)) vs \(expected.prefix(4))",
              file: file, line: line)
}

/// `text` with every scalar outside printable ASCII written as `\u{hex}`, for
/// failure messages about exotic text.
public func escapedScalars(_ text: String) -> String {
    text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
}
