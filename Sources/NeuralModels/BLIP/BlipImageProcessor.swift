// Port of transformers/models/blip/image_processing_blip.py (BlipImageProcessor,
// PIL backend): resize to size×size (bicubic), rescale, normalise.
import Foundation
import NeuralCore

/// BLIP's image preparation, driven by the checkpoint's
/// `preprocessor_config.json` (Pillow resize, as transformers' slow processor).
public struct BlipImageProcessor: ImageProcessor, Equatable {
    /// The preprocessing settings.
    public let config: ImagePreprocessingConfig
    /// The `[height, width]` the processed image has.
    public let outputSize: (height: Int, width: Int)

    /// Settings from `config`; images come out `imageSize` square unless the
    /// config names another size.
    public init(config: ImagePreprocessingConfig, imageSize: Int) {
        self.config = config
        outputSize = config.outputSize ?? (imageSize, imageSize)
    }

    /// The settings of a BLIP checkpoint: its `preprocessor_config.json`, or
    /// BLIP's defaults at the vision tower's image size when the file is absent.
    /// - Throws: the preprocessor config's decoding errors.
    public init(checkpoint: Checkpoint, vision: BlipVisionConfig) throws {
        let file = checkpoint.directory.appendingPathComponent("preprocessor_config.json")
        if FileManager.default.fileExists(atPath: file.path) {
            self.init(config: try ImagePreprocessingConfig(contentsOf: file), imageSize: vision.imageSize)
        } else {
            var defaults = ImagePreprocessingConfig(blip: true)
            defaults.size = ImageSizeSpec(height: vision.imageSize, width: vision.imageSize)
            self.init(config: defaults, imageSize: vision.imageSize)
        }
    }

    /// `[3, height, width]` floats for `image`.
    /// - Throws: ``ImagePreprocessingError`` for unusable settings.
    public func callAsFunction(_ image: RGBImage) throws -> Tensor {
        Tensor(shape: [3, outputSize.height, outputSize.width], scalars: try ImagePreprocessing.huggingFace(image, config: config))
    }

    /// Processors are equal when their settings are.
    public static func == (lhs: BlipImageProcessor, rhs: BlipImageProcessor) -> Bool {
        lhs.config == rhs.config && lhs.outputSize == rhs.outputSize
    }
}
