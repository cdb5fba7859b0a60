import NeuralCore
import TestSupport
import XCTest

/// Kernels against PyTorch's outputs (Tests/Fixtures/core/kernels.safetensors,
/// written by Weights/fixtures/make_core_fixtures.py).
final class KernelGoldenTests: XCTestCase {
    var file: SafeTensorsFile!

    override func setUpWithError() throws {
        file = try SafeTensorsFile(contentsOf: Fixtures.url("core/kernels.safetensors"))
    }

    func floats(_ name: String) throws -> [Float] { try file.tensor(name).floats() }

    func testLayerNormMatchesPyTorch() throws {
        for index in 0..<2 {
            let x = try file.tensor("layernorm.\(index).x")
            let eps = try XCTUnwrap(Float(file.metadata["layernorm.\(index).eps"] ?? ""))
            let (rows, cols) = (x.shape[0], x.shape[1])
            var y = [Float](repeating: 0, count: rows * cols)
            layerNorm(&y, try floats("layernorm.\(index).x"), weight: try floats("layernorm.\(index).weight"),
                      bias: try floats("layernorm.\(index).bias"), rows: rows, cols: cols, eps: eps)
            assertClose(y, try floats("layernorm.\(index).y"), tolerance: 1e-5, "layernorm.\(index)")
        }
    }

    func testActivationsMatchPyTorch() throws {
        let x = try floats("act.x")
        for (name, activation) in [("gelu", Activation.gelu), ("gelu_tanh", .geluTanh), ("quick_gelu", .quickGELU)] {
            var y = x
            activate(&y, count: y.count, activation)
            assertClose(y, try floats("act.\(name)"), tolerance: 1e-5, name)
        }
    }

    func testSoftmaxMatchesPyTorch() throws {
        let x = try floats("softmax.x")
        for (name, mask) in [("y", SoftmaxMask.none), ("causal", SoftmaxMask(causalOffset: 0)), ("padded", SoftmaxMask(validColumns: 20))] {
            var y = x
            softmaxRows(&y, rows: 33, cols: 33, mask: mask)
            assertClose(y, try floats("softmax.\(name)"), tolerance: 1e-6, "softmax.\(name)")
        }
    }
}
