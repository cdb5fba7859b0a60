import Foundation
import NeuralCore
import TestSupport
import XCTest

final class WeightScopeTests: XCTestCase {
    func makeStore() throws -> WeightStore {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("weights-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensorsWriter.write([
            "encoder.layers.0.fc.weight": Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]),
            "encoder.layers.0.fc.bias": Tensor(shape: [3], scalars: [0.5, 0.25, 0.125]).converted(to: .f16),
            "encoder.layers.1.fc.weight": Tensor(zeros: [3, 2], dtype: .bf16),
            "embeddings.position_ids": [Int64(0), 1, 2].withUnsafeBytes { Tensor(shape: [1, 3], dtype: .i64, bytes: $0) },
        ], to: url)
        // The mapping survives the file's removal (it is kept open by the store).
        return try WeightStore(contentsOf: url)
    }

    func testScopedLookupWithShapeCheckAndConversion() throws {
        let store = try makeStore()
        let layer = WeightScope(store).scoped("encoder").scoped("layers.0")
        XCTAssertEqual(layer.key("fc.weight"), "encoder.layers.0.fc.weight")
        XCTAssertEqual(try layer.tensor("fc.weight", shape: [3, 2]).floats(), [1, 2, 3, 4, 5, 6])
        let bias = try layer.tensor("fc.bias", shape: [3])
        XCTAssertEqual(bias.dtype, .f32, "F16 weights arrive as F32")
        XCTAssertEqual(bias.floats(), [0.5, 0.25, 0.125])
        XCTAssertNil(try layer.tensorIfPresent("fc.missing", shape: [3]))
    }

    func testErrorsNameTheFullKeyAndBothShapes() throws {
        let root = WeightScope(try makeStore())
        XCTAssertThrowsError(try root.scoped("encoder.layers.1").tensor("fc.weight", shape: [2, 3])) { error in
            XCTAssertEqual(error as? WeightError, .shapeMismatch(key: "encoder.layers.1.fc.weight", expected: [2, 3], found: [3, 2]))
            XCTAssertTrue("\(error)".contains("encoder.layers.1.fc.weight") && "\(error)".contains("[3, 2]") && "\(error)".contains("[2, 3]"))
        }
        XCTAssertThrowsError(try root.scoped("encoder.layers.2").tensor("fc.weight", shape: [3, 2])) { error in
            XCTAssertEqual(error as? WeightError, .missing(key: "encoder.layers.2.fc.weight", expectedShape: [3, 2]))
        }
        XCTAssertThrowsError(try root.tensor("embeddings.position_ids", shape: [1, 3])) { error in
            XCTAssertEqual(error as? WeightError, .unsupportedDType(key: "embeddings.position_ids", dtype: .i64))
        }
    }

    func testStrictReportOfUnusedKeys() throws {
        let store = try makeStore()
        let root = WeightScope(store)
        _ = try root.tensor("encoder.layers.0.fc.weight", shape: [3, 2])
        _ = try root.tensor("encoder.layers.0.fc.bias", shape: [3])
        store.markConsumed { $0.hasSuffix("position_ids") }
        XCTAssertThrowsError(try store.verifyAllConsumed()) { error in
            XCTAssertEqual(error as? WeightError, .unused(keys: ["encoder.layers.1.fc.weight": [3, 2]]))
        }
        _ = try root.tensor("encoder.layers.1.fc.weight", shape: [3, 2])
        XCTAssertNoThrow(try store.verifyAllConsumed())
    }
}
