// Port of transformers/models/blip/image_processing_blip.py (BlipImageProcessor,
// PIL backend): resize to size×size (bicubic), rescale, normalise.
import Foundation
import NeuralCore

/// BLIP's image preparation, driven by the checkpoint's
/// `preprocessor_config.json` (Pillow resize, as transformers' slow processor).
public struct BlipImageProcessor: ImageProcessor, Equatable {
    /// The preprocessing settings.
    public let config: ImagePreprocessingConfig
    /// The `[height, width]` the vision tower takes; an image the settings would
    /// bring to another size is refused before any pixel is resized.
    public let outputSize: (height: Int, width: Int)

    /// Settings from `config`; images must come out `imageSize` square unless
    /// the config names another fixed size.
    public init(config: ImagePreprocessingConfig, imageSize: Int) {
        self.config = config
        outputSize = config.outputSize ?? (imageSize, imageSize)
    }

    /// The settings of a BLIP checkpoint: its `preprocessor_config.json`, or
    /// BLIP's defaults at the vision tower's image size when the file is absent.
    /// - Throws: `CheckpointError` naming the file and key of a bad value, or of
    ///   a size that can never match the vision tower's `image_size`.
    public init(checkpoint: Checkpoint, vision: BlipVisionConfig) throws {
        let file = checkpoint.directory.appendingPathComponent("preprocessor_config.json")
        if FileManager.default.fileExists(atPath: file.path) {
            let config = try ImagePreprocessingConfig(contentsOf: file)
            if let (height, width) = config.outputSize, (height, width) != (vision.imageSize, vision.imageSize) {
                let key = config.doCenterCrop && config.cropSize != nil ? "crop_size" : "size"
                throw CheckpointError.invalidValue(
                    path: file.path, key: key,
                    reason: "makes \(width)x\(height) images, but the vision model takes \(vision.imageSize)x\(vision.imageSize) (image_size in config.json)")
            }
            self.init(config: config, imageSize: vision.imageSize)
        } else {
            var defaults = ImagePreprocessingConfig(blip: true)
            defaults.size = ImageSizeSpec(height: vision.imageSize, width: vision.imageSize)
            self.init(config: defaults, imageSize: vision.imageSize)
        }
    }

    /// `[3, height, width]` floats for `image`.
    /// - Throws: ``ImagePreprocessingError`` for unusable settings;
    ///   ``ModelInputError/imageShape(found:expected:)`` when the settings bring
    ///   this image to another size than ``outputSize`` (a `shortest_edge` resize
    ///   of a non-square image), checked before resizing.
    public func callAsFunction(_ image: RGBImage) throws -> Tensor {
        let (width, height) = try ImagePreprocessing.huggingFaceOutputSize(width: image.width, height: image.height, config: config)
        guard (height, width) == outputSize else {
            throw ModelInputError.imageShape(found: [3, height, width], expected: [3, outputSize.height, outputSize.width])
        }
        return Tensor(shape: [3, height, width], scalars: try ImagePreprocessing.huggingFace(image, config: config))
    }

    /// Processors are equal when their settings are.
    public static func == (lhs: BlipImageProcessor, rhs: BlipImageProcessor) -> Bool {
        lhs.config == rhs.config && lhs.outputSize == rhs.outputSize
    }
}
