import ClipInterrogator
import Foundation
import NeuralCore
import NeuralModels

/// Stage 7: dataset throughput, images per hour in caption, fast and classic mode
/// on the full-size synthetic ViT-L/14 + BLIP-large checkpoints of stage 6, with
/// images captioned and embedded `batchSize` at a time, then each image's prompt
/// on its own, as a dataset run (`BatchRunner`) does: ``Interrogator/prepare(_:captioning:embedding:)``
/// and ``Interrogator/features(ofPrepared:)`` (here on one thread; the runner
/// prepares the next images on a second). Run once per batch
/// size, each in a fresh process, so the peak memory is that batch size's.
enum Throughput {
    struct Row: Codable {
        var mode: String
        var batchSize: Int
        var images: Int
        var seconds: Double
        var imagesPerHour: Double
        var peakResidentMB: Double
    }

    /// Image `k` of the run: 640×480, bytes `(i + 7919k) &* (2654435761 >> 13)`.
    static func image(_ k: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: 640 * 480 * 3)
        for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: (i + 7919 * k) &* (2_654_435_761 >> 13)) }
        return RGBImage(width: 640, height: 480, pixels: pixels)
    }

    static func run(directory: URL, modes: [InterrogationMode], batchSize: Int, images count: Int) throws -> [Row] {
        var configuration = InterrogatorConfiguration(encoderName: FullInterrogation.cacheModelName)
        configuration.cacheDirectory = directory.appendingPathComponent("cache")
        let interrogator = try Interrogator.load(clipDirectory: directory.appendingPathComponent("clip"),
                                                 captionDirectory: directory.appendingPathComponent("blip"), configuration: configuration)
        _ = try interrogator.labelTables()
        let images = (0..<count).map(image)
        return try modes.map { mode in
            let start = Date()
            for first in stride(from: 0, to: images.count, by: batchSize) {
                let batch = Array(images[first..<min(first + batchSize, images.count)])
                let prepared = try batch.map { try interrogator.prepare($0, captioning: mode.usesCaption, embedding: mode != .caption) }
                for features in try interrogator.features(ofPrepared: prepared) {
                    _ = try interrogator.interrogate(features, mode: mode)
                }
            }
            let seconds = Date().timeIntervalSince(start)
            return Row(mode: mode.rawValue, batchSize: batchSize, images: count, seconds: seconds,
                       imagesPerHour: Double(count) / seconds * 3600, peakResidentMB: peakResidentMegabytes())
        }
    }
}
