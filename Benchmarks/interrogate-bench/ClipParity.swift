import Foundation
import NeuralCore
import NeuralModels

/// `interrogate-bench --clip-parity DIR`: loads the CLIP checkpoint in DIR and
/// compares its image and text embeddings with the reference's, stored by
/// Weights/fixtures/parity_clip_full_size.py in DIR/golden.safetensors
/// (`pixel_values`, `input_ids`, `image_embeds`, `text_embeds`). Prints one JSON
/// object; exits 1 when any cosine is below 0.99999.
enum ClipParity {
    struct Report: Codable {
        var imageCosines: [Double]
        var textCosines: [Double]
        var imageMaxAbsDiff: Float
        var textMaxAbsDiff: Float
        var loadSeconds: Double
        var imageSeconds: Double
        var textSeconds: Double
        var peakResidentMB: Double
    }

    static func run(directory: URL) throws -> Bool {
        let start = Date()
        let model = try CLIPModel(directory: directory)
        let loaded = Date()
        let golden = try SafeTensorsFile(contentsOf: directory.appendingPathComponent("golden.safetensors"))
        let ids = try golden.tensor("input_ids")
        let flat = ids.integers().map { Int($0) }
        let texts = (0..<ids.shape[0]).map { Array(flat[($0 * ids.shape[1])..<(($0 + 1) * ids.shape[1])]) }
        let images = try model.imageEmbeddings(golden.tensor("pixel_values"))
        let imaged = Date()
        let textEmbeddings = try model.textEmbeddings(texts)
        let done = Date()
        let (imageCosines, imageDiff) = compare(images, try golden.tensor("image_embeds"))
        let (textCosines, textDiff) = compare(textEmbeddings, try golden.tensor("text_embeds"))
        let report = Report(imageCosines: imageCosines, textCosines: textCosines, imageMaxAbsDiff: imageDiff,
                            textMaxAbsDiff: textDiff, loadSeconds: loaded.timeIntervalSince(start),
                            imageSeconds: imaged.timeIntervalSince(loaded), textSeconds: done.timeIntervalSince(imaged),
                            peakResidentMB: peakResidentMegabytes())
        print(String(decoding: try InterrogateBench.prettyJSON(report), as: UTF8.self))
        return (imageCosines + textCosines).allSatisfy { $0 >= 0.99999 }
    }

    /// Per-row cosine similarity and the largest absolute difference.
    static func compare(_ actual: Tensor, _ expected: Tensor) -> ([Double], Float) {
        let a = actual.floats(), e = expected.floats(), width = actual.shape[1]
        var cosines: [Double] = []
        for row in 0..<actual.shape[0] {
            var dot = 0.0, na = 0.0, ne = 0.0
            for c in 0..<width {
                let (x, y) = (Double(a[row * width + c]), Double(e[row * width + c]))
                dot += x * y; na += x * x; ne += y * y
            }
            cosines.append(dot / (na.squareRoot() * ne.squareRoot()))
        }
        return (cosines, zip(a, e).map { abs($0 - $1) }.max() ?? 0)
    }
}
