// Port of open_clip's evaluation transform as clip-interrogator 0.6.0 runs it
// (torchvision on PIL images: Resize(size, BICUBIC), CenterCrop(size), ToTensor,
// Normalize(mean, std)).
import Foundation
import NeuralCore

/// CLIP's image preparation as the reference runs it: bicubic shortest-side
/// resize, centre crop, ÷255, normalise with the checkpoint's mean and std.
public struct CLIPImageProcessor: ImageProcessor, Equatable {
    /// The square side the vision tower takes.
    public var size: Int
    /// Per-channel mean.
    public var mean: [Double]
    /// Per-channel standard deviation.
    public var std: [Double]

    /// Explicit settings (OpenAI's mean and std by default).
    public init(size: Int, mean: [Double] = ImagePreprocessingConfig.openAIMean, std: [Double] = ImagePreprocessingConfig.openAIStd) {
        self.size = size
        self.mean = mean
        self.std = std
    }

    /// The settings of a CLIP checkpoint: the vision tower's image size and the
    /// mean/std of the checkpoint's `preprocessor_config.json` (OpenAI's when the
    /// file is absent).
    /// - Throws: the preprocessor config's decoding errors.
    public init(checkpoint: Checkpoint, vision: CLIPVisionConfig) throws {
        let file = checkpoint.directory.appendingPathComponent("preprocessor_config.json")
        if FileManager.default.fileExists(atPath: file.path) {
            let config = try ImagePreprocessingConfig(contentsOf: file)
            self.init(size: vision.imageSize, mean: config.imageMean, std: config.imageStd)
        } else {
            self.init(size: vision.imageSize)
        }
    }

    /// `[3, size, size]` floats for `image`.
    /// - Throws: ``ImagePreprocessingError`` for unusable settings.
    public func callAsFunction(_ image: RGBImage) throws -> Tensor {
        Tensor(shape: [3, size, size], scalars: try ImagePreprocessing.openCLIP(image, size: size, mean: mean, std: std))
    }
}
