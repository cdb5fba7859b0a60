// Image → normalised CHW Float tensors, the way the reference pipelines do it.
//
// Two pipelines matter, and they differ in small ways:
//
// open_clip / torchvision (what clip-interrogator uses for CLIP):
//   open_clip.transform.image_transform(size, is_train=False), for a square size:
//   Resize(size, BICUBIC)  torchvision.transforms.functional.resize with an int:
//                          short side → size, long side → int(size * long / short)
//                          (truncation), then PIL `Image.resize` (no reducing_gap)
//   CenterCrop(size)       torchvision.transforms.functional.center_crop:
//                          top = int(round((h - size) / 2.0)) — Python round,
//                          i.e. half to even; zero padding first if smaller
//   ToTensor()             float32(v) / 255 (true division in float32)
//   Normalize(mean, std)   (x - float32(mean)) / float32(std), float32
//
// Hugging Face image processors, PIL backend (CLIPImageProcessorPil,
// BlipImageProcessorPil in transformers 5; the "slow" processors before):
//   resize                 shortest_edge: same size rule as torchvision;
//                          {height, width}: that size exactly (BLIP: 384×384);
//                          PIL `Image.resize(size, resample)`, reducing_gap None
//   center_crop            top = (h - crop_h) // 2 (floor, unlike torchvision:
//                          the two differ when h - crop_h ≡ 3 mod 4)
//   rescale                float32(float64(v) * rescale_factor)  (not v / 255)
//   normalize              (x - float32(mean)) / float32(std), float32
// transformers' torchvision ("fast") processors resize tensors instead of PIL
// images and differ from Pillow by up to one 8-bit level; they are not the
// target here.

import Foundation

/// A size entry of `preprocessor_config.json`: an integer (old files) or a
/// dictionary with `shortest_edge` or `height`/`width`.
public struct ImageSizeSpec: Codable, Sendable, Equatable {
    public var shortestEdge: Int?
    public var longestEdge: Int?
    public var height: Int?
    public var width: Int?
    /// Set when the file held a bare integer; its meaning depends on the
    /// processor (`default_to_square`).
    public var scalar: Int?

    public init(shortestEdge: Int? = nil, longestEdge: Int? = nil, height: Int? = nil,
                width: Int? = nil, scalar: Int? = nil) {
        self.shortestEdge = shortestEdge
        self.longestEdge = longestEdge
        self.height = height
        self.width = width
        self.scalar = scalar
    }

    private enum CodingKeys: String, CodingKey {
        case shortestEdge = "shortest_edge"
        case longestEdge = "longest_edge"
        case height, width
    }

    public init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let value = try? single.decode(Int.self) {
            self.init(scalar: value)
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(shortestEdge: try container.decodeIfPresent(Int.self, forKey: .shortestEdge),
                  longestEdge: try container.decodeIfPresent(Int.self, forKey: .longestEdge),
                  height: try container.decodeIfPresent(Int.self, forKey: .height),
                  width: try container.decodeIfPresent(Int.self, forKey: .width))
    }

    public func encode(to encoder: Encoder) throws {
        if let scalar {
            var single = encoder.singleValueContainer()
            try single.encode(scalar)
            return
        }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(shortestEdge, forKey: .shortestEdge)
        try container.encodeIfPresent(longestEdge, forKey: .longestEdge)
        try container.encodeIfPresent(height, forKey: .height)
        try container.encodeIfPresent(width, forKey: .width)
    }

    /// transformers' `get_size_dict`: a bare integer is a square when
    /// `defaultToSquare`, else a shortest edge.
    public func resolved(defaultToSquare: Bool) -> ImageSizeSpec {
        guard let scalar else { return self }
        return defaultToSquare ? ImageSizeSpec(height: scalar, width: scalar) : ImageSizeSpec(shortestEdge: scalar)
    }
}

/// Errors of the preprocessing helpers.
public enum ImagePreprocessingError: Error, Equatable, CustomStringConvertible {
    /// The `resample` value is not a convolution filter (e.g. NEAREST = 0).
    case unsupportedResample(Int)
    /// The size entry has no form this module implements.
    case unsupportedSize(String)
    /// Mean or std do not have three entries.
    case badChannelStatistics

    /// What is wrong, naming the `preprocessor_config.json` field.
    public var description: String {
        switch self {
        case .unsupportedResample(let value): "preprocessor_config.json: resample \(value) is not a supported filter (lanczos 1, bilinear 2, bicubic 3, box 4, hamming 5)"
        case .unsupportedSize(let size): "preprocessor_config.json: size \(size) has no form this library implements"
        case .badChannelStatistics: "preprocessor_config.json: image_mean and image_std need three entries each"
        }
    }
}

/// A checkpoint's `preprocessor_config.json` (CLIP or BLIP image processor).
/// Absent keys take the defaults of the processor class named by
/// `image_processor_type` / `feature_extractor_type`.
public struct ImagePreprocessingConfig: Codable, Sendable, Equatable {
    public var imageProcessorType: String?
    public var featureExtractorType: String?
    public var imageMean: [Double]
    public var imageStd: [Double]
    public var size: ImageSizeSpec
    public var cropSize: ImageSizeSpec?
    public var doResize: Bool
    public var doCenterCrop: Bool
    public var doRescale: Bool
    public var doNormalize: Bool
    public var doConvertRGB: Bool
    /// Pillow resampling constant (3 = BICUBIC).
    public var resample: Int
    public var rescaleFactor: Double

    /// OpenAI CLIP statistics (transformers' OPENAI_CLIP_MEAN / _STD).
    public static let openAIMean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public static let openAIStd: [Double] = [0.26862954, 0.26130258, 0.27577711]

    private enum CodingKeys: String, CodingKey {
        case imageProcessorType = "image_processor_type"
        case featureExtractorType = "feature_extractor_type"
        case imageMean = "image_mean"
        case imageStd = "image_std"
        case size
        case cropSize = "crop_size"
        case doResize = "do_resize"
        case doCenterCrop = "do_center_crop"
        case doRescale = "do_rescale"
        case doNormalize = "do_normalize"
        case doConvertRGB = "do_convert_rgb"
        case resample
        case rescaleFactor = "rescale_factor"
    }

    /// Whether the processor treats a bare integer size as a square (BLIP) or
    /// as a shortest edge (CLIP).
    public var isBlip: Bool {
        let name = (imageProcessorType ?? featureExtractorType ?? "").lowercased()
        return name.hasPrefix("blip")
    }

    /// The defaults of CLIPImageProcessor (`blip == false`) or BlipImageProcessor.
    public init(blip: Bool) {
        imageProcessorType = blip ? "BlipImageProcessor" : "CLIPImageProcessor"
        featureExtractorType = nil
        imageMean = Self.openAIMean
        imageStd = Self.openAIStd
        size = blip ? ImageSizeSpec(height: 384, width: 384) : ImageSizeSpec(shortestEdge: 224)
        cropSize = blip ? nil : ImageSizeSpec(height: 224, width: 224)
        doResize = true
        doCenterCrop = !blip
        doRescale = true
        doNormalize = true
        doConvertRGB = true
        resample = 3
        rescaleFactor = 1.0 / 255.0
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let processor = try c.decodeIfPresent(String.self, forKey: .imageProcessorType)
        let extractor = try c.decodeIfPresent(String.self, forKey: .featureExtractorType)
        let blip = (processor ?? extractor ?? "").lowercased().hasPrefix("blip")
        self.init(blip: blip)
        imageProcessorType = processor
        featureExtractorType = extractor
        imageMean = try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? imageMean
        imageStd = try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? imageStd
        size = (try c.decodeIfPresent(ImageSizeSpec.self, forKey: .size) ?? size).resolved(defaultToSquare: blip)
        if let crop = try c.decodeIfPresent(ImageSizeSpec.self, forKey: .cropSize) {
            cropSize = crop.resolved(defaultToSquare: true)
        }
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? doResize
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? doCenterCrop
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? doRescale
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? doNormalize
        doConvertRGB = try c.decodeIfPresent(Bool.self, forKey: .doConvertRGB) ?? doConvertRGB
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? resample
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? rescaleFactor
    }

    /// Reads `preprocessor_config.json`.
    public init(contentsOf url: URL) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(contentsOf: url))
    }

    /// The square side the model sees after preprocessing (crop size if
    /// cropping, else the resize size), when it is square.
    public var outputSize: (height: Int, width: Int)? {
        if doCenterCrop, let crop = cropSize, let h = crop.height, let w = crop.width { return (h, w) }
        if let h = size.height, let w = size.width { return (h, w) }
        if let s = size.shortestEdge { return (s, s) }
        return nil
    }
}

/// Preprocessing pipelines producing `[Float]` tensors of shape `[3, H, W]`.
public enum ImagePreprocessing {
    // MARK: Pipelines

    /// open_clip's evaluation transform as clip-interrogator runs it
    /// (torchvision on a PIL image): Resize(size, filter) on the shortest
    /// side, CenterCrop(size), ToTensor, Normalize(mean, std).
    /// Returns `[3, size, size]`.
    public static func openCLIP(_ image: RGBImage, size: Int,
                                mean: [Double] = ImagePreprocessingConfig.openAIMean,
                                std: [Double] = ImagePreprocessingConfig.openAIStd,
                                filter: ResampleFilter = .bicubic) throws -> [Float] {
        guard mean.count == 3, std.count == 3 else { throw ImagePreprocessingError.badChannelStatistics }
        let resized = resizeShortestEdge(image, to: size, filter: filter)
        let cropped = centerCropTorchvision(resized, height: size, width: size)
        return toTensorNormalized(cropped, mean: mean, std: std)
    }

    /// A Hugging Face image processor (PIL backend) driven by its
    /// `preprocessor_config.json`: resize, center crop, rescale, normalize.
    public static func huggingFace(_ image: RGBImage, config: ImagePreprocessingConfig) throws -> [Float] {
        guard config.imageMean.count == 3, config.imageStd.count == 3 else {
            throw ImagePreprocessingError.badChannelStatistics
        }
        var current = image
        if config.doResize {
            guard let filter = ResampleFilter(pillowCode: config.resample) else {
                throw ImagePreprocessingError.unsupportedResample(config.resample)
            }
            let size = config.size.resolved(defaultToSquare: config.isBlip)
            if let edge = size.shortestEdge, size.longestEdge == nil {
                current = resizeShortestEdge(current, to: edge, filter: filter)
            } else if let h = size.height, let w = size.width {
                current = current.resized(width: w, height: h, filter: filter)
            } else {
                throw ImagePreprocessingError.unsupportedSize("\(size)")
            }
        }
        if config.doCenterCrop, let crop = config.cropSize {
            guard let h = crop.height, let w = crop.width else {
                throw ImagePreprocessingError.unsupportedSize("crop_size \(crop)")
            }
            current = centerCropHuggingFace(current, height: h, width: w)
        }
        return rescaleNormalizeHuggingFace(current, rescale: config.doRescale ? config.rescaleFactor : nil,
                                           mean: config.doNormalize ? config.imageMean : nil,
                                           std: config.doNormalize ? config.imageStd : nil)
    }

    /// BLIP's image processor: resize straight to `size × size` with PIL
    /// BICUBIC, rescale by 1/255, normalize. Same as ``huggingFace(_:config:)``
    /// with BlipImageProcessor's defaults and the given size and statistics.
    public static func blip(_ image: RGBImage, size: Int = 384,
                            mean: [Double] = ImagePreprocessingConfig.openAIMean,
                            std: [Double] = ImagePreprocessingConfig.openAIStd) throws -> [Float] {
        var config = ImagePreprocessingConfig(blip: true)
        config.size = ImageSizeSpec(height: size, width: size)
        config.imageMean = mean
        config.imageStd = std
        return try huggingFace(image, config: config)
    }

    // MARK: Steps

    /// The output size of a shortest-edge resize (torchvision's
    /// `_compute_resized_output_size` and transformers'
    /// `get_resize_output_image_size`): short side → `size`, long side →
    /// `int(size * long / short)`.
    public static func shortestEdgeSize(width: Int, height: Int, to size: Int) -> (width: Int, height: Int) {
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(size * long) / Double(short))
        return width <= height ? (size, newLong) : (newLong, size)
    }

    /// Resize so that the shorter side is `size` (see ``shortestEdgeSize(width:height:to:)``).
    public static func resizeShortestEdge(_ image: RGBImage, to size: Int,
                                          filter: ResampleFilter = .bicubic) -> RGBImage {
        let target = shortestEdgeSize(width: image.width, height: image.height, to: size)
        return image.resized(width: target.width, height: target.height, filter: filter)
    }

    /// A crop of `width × height` at (`left`, `top`), zero outside the image
    /// (PIL's `Image.crop`).
    public static func crop(_ image: RGBImage, left: Int, top: Int, width: Int, height: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let x0 = max(left, 0), x1 = min(left + width, image.width)
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                guard x1 > x0 else { return }
                for y in 0..<height {
                    let sy = top + y
                    guard sy >= 0 && sy < image.height else { continue }
                    let from = (sy * image.width + x0) * 3
                    let to = (y * width + (x0 - left)) * 3
                    for i in 0..<((x1 - x0) * 3) {
                        destination[to + i] = source[from + i]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// torchvision's `center_crop` on a PIL image: zero padding when the image
    /// is smaller (left/top get the floor half), then offsets
    /// `int(round((h - ch) / 2.0))` with Python's half-to-even rounding.
    public static func centerCropTorchvision(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
        var current = image
        if width > current.width || height > current.height {
            let padLeft = width > current.width ? (width - current.width) / 2 : 0
            let padTop = height > current.height ? (height - current.height) / 2 : 0
            let padRight = width > current.width ? (width - current.width + 1) / 2 : 0
            let padBottom = height > current.height ? (height - current.height + 1) / 2 : 0
            current = crop(current, left: -padLeft, top: -padTop,
                           width: current.width + padLeft + padRight,
                           height: current.height + padTop + padBottom)
            if current.width == width && current.height == height { return current }
        }
        let top = Int((Double(current.height - height) / 2.0).rounded(.toNearestOrEven))
        let left = Int((Double(current.width - width) / 2.0).rounded(.toNearestOrEven))
        return crop(current, left: left, top: top, width: width, height: height)
    }

    /// transformers' `center_crop` (image_transforms.py): offsets
    /// `(h - ch) // 2`; a smaller image is first placed on a zero canvas at
    /// `ceil(pad / 2)`.
    public static func centerCropHuggingFace(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
        func floorDiv(_ a: Int, _ b: Int) -> Int { Int((Double(a) / Double(b)).rounded(.down)) }
        var top = floorDiv(image.height - height, 2)
        var left = floorDiv(image.width - width, 2)
        if top >= 0 && top + height <= image.height && left >= 0 && left + width <= image.width {
            return crop(image, left: left, top: top, width: width, height: height)
        }
        let newHeight = max(height, image.height), newWidth = max(width, image.width)
        let topPad = (newHeight - image.height + 1) / 2
        let leftPad = (newWidth - image.width + 1) / 2
        let canvas = crop(image, left: -leftPad, top: -topPad, width: newWidth, height: newHeight)
        top += topPad
        left += leftPad
        let bottom = min(newHeight, top + height), right = min(newWidth, left + width)
        top = max(0, top)
        left = max(0, left)
        return crop(canvas, left: left, top: top, width: max(0, right - left), height: max(0, bottom - top))
    }

    /// torchvision `ToTensor` + `Normalize`: CHW, `float32(v) / 255`, then
    /// `(x - float32(mean)) / float32(std)`.
    public static func toTensorNormalized(_ image: RGBImage, mean: [Double], std: [Double]) -> [Float] {
        let plane = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * plane)
        let m = mean.map { Float($0) }, s = std.map { Float($0) }
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                for c in 0..<3 {
                    let mc = m[c], sc = s[c]
                    for i in 0..<plane {
                        let x = Float(source[3 * i + c]) / 255
                        destination[c * plane + i] = (x - mc) / sc
                    }
                }
            }
        }
        return out
    }

    /// transformers' `rescale` + `normalize`: CHW,
    /// `float32(float64(v) * rescale)`, then `(x - float32(mean)) / float32(std)`.
    /// `nil` skips a step.
    public static func rescaleNormalizeHuggingFace(_ image: RGBImage, rescale: Double?,
                                                   mean: [Double]?, std: [Double]?) -> [Float] {
        let plane = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * plane)
        let m = mean?.map { Float($0) }, s = std?.map { Float($0) }
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                for c in 0..<3 {
                    for i in 0..<plane {
                        let v = source[3 * i + c]
                        var x = rescale.map { Float(Double(v) * $0) } ?? Float(v)
                        if let m, let s { x = (x - m[c]) / s[c] }
                        destination[c * plane + i] = x
                    }
                }
            }
        }
        return out
    }
}

extension ImagePreprocessingError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
