import Foundation
import NeuralCore
import XCTest

/// The committed fixture files, found relative to this source file.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }
}

/// Asserts `max |actual − expected| ≤ tolerance`, printing the first values and
/// the worst index on failure.
func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ what: String,
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
