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
import NeuralCore

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
        try validate(c)
    }

    /// Checks every value a pipeline would use, so a bad file fails at load with
    /// its key named rather than per image (or by dividing by a zero `image_std`).
    private func validate(_ c: KeyedDecodingContainer<CodingKeys>) throws {
        for (values, key) in [(imageMean, CodingKeys.imageMean), (imageStd, .imageStd)] {
            try c.require(values.count == 3, key, "\(values.count) values, expected 3 (one per RGB channel)")
            try c.require(values.allSatisfy(\.isFinite), key, "\(values) holds a value that is not finite")
        }
        try c.require(!imageStd.contains(0), .imageStd, "\(imageStd) holds a zero (normalising would divide by it)")
        try c.require(rescaleFactor.isFinite, .rescaleFactor, "\(rescaleFactor) is not finite")
        func sides(_ spec: ImageSizeSpec, _ key: CodingKeys) throws {
            for side in [spec.shortestEdge, spec.longestEdge, spec.height, spec.width].compactMap({ $0 }) {
                try c.require(ConfigLimits.imageSide.contains(side), key,
                              "\(side) is outside \(ConfigLimits.imageSide.lowerBound)...\(ConfigLimits.imageSide.upperBound)")
            }
        }
        try sides(size, .size)
        if doResize {
            try c.require(ResampleFilter(pillowCode: resample) != nil, .resample,
                          "\(resample) is not one of Pillow's convolution filters (1...5; NEAREST is not supported)")
            let usable = (size.shortestEdge != nil && size.longestEdge == nil) || (size.height != nil && size.width != nil)
            try c.require(usable, .size, "\(size) has neither a shortest_edge alone nor both height and width")
        }
        if let cropSize {
            try sides(cropSize, .cropSize)
            try c.require(!doCenterCrop || (cropSize.height != nil && cropSize.width != nil), .cropSize,
                          "\(cropSize) lacks a height or a width")
        }
    }

    /// Reads `preprocessor_config.json`.
    /// - Throws: `CheckpointError` naming the file, and the key of a bad value.
    public init(contentsOf url: URL) throws {
        self = try Checkpoint.decodeJSON(Self.self, at: url)
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
    /// Returns `[3, size, size]`. Only the part of the resized image the crop
    /// keeps is computed (``resizedCrop(_:width:height:filter:left:top:cropWidth:cropHeight:)``),
    /// so memory stays near `size × size` however elongated the image.
    /// - Throws: ``ImagePreprocessingError``, ``ResampleError``.
    public static func openCLIP(_ image: RGBImage, size: Int,
                                mean: [Double] = ImagePreprocessingConfig.openAIMean,
                                std: [Double] = ImagePreprocessingConfig.openAIStd,
                                filter: ResampleFilter = .bicubic) throws -> [Float] {
        guard mean.count == 3, std.count == 3 else { throw ImagePreprocessingError.badChannelStatistics }
        guard size > 0 else { throw ImagePreprocessingError.unsupportedSize("size \(size)") }
        try requireNonEmpty(image)
        let target = shortestEdgeSize(width: image.width, height: image.height, to: size)
        let cropped = try resizedCrop(image, width: target.width, height: target.height, filter: filter,
                                      left: torchvisionCropOffset(target.width, size), top: torchvisionCropOffset(target.height, size),
                                      cropWidth: size, cropHeight: size)
        return toTensorNormalized(cropped, mean: mean, std: std)
    }

    /// The size ``huggingFace(_:config:)`` produces for an image of
    /// `width × height`, computed without touching pixels (so a caller can
    /// refuse a shape its model cannot take before paying for it).
    /// - Throws: ``ImagePreprocessingError`` for settings it cannot apply.
    public static func huggingFaceOutputSize(width: Int, height: Int,
                                             config: ImagePreprocessingConfig) throws -> (width: Int, height: Int) {
        let plan = try huggingFacePlan(width: width, height: height, config: config)
        return (plan.crop?.width ?? plan.width, plan.crop?.height ?? plan.height)
    }

    /// A Hugging Face image processor (PIL backend) driven by its
    /// `preprocessor_config.json`: resize, center crop, rescale, normalize.
    /// With both a resize and a crop, only the kept part is resized.
    /// - Throws: ``ImagePreprocessingError``, ``ResampleError``.
    public static func huggingFace(_ image: RGBImage, config: ImagePreprocessingConfig) throws -> [Float] {
        guard config.imageMean.count == 3, config.imageStd.count == 3 else {
            throw ImagePreprocessingError.badChannelStatistics
        }
        try requireNonEmpty(image)
        let plan = try huggingFacePlan(width: image.width, height: image.height, config: config)
        let crop = plan.crop ?? (left: 0, top: 0, width: plan.width, height: plan.height)
        let current = try resizedCrop(image, width: plan.width, height: plan.height, filter: plan.filter,
                                      left: crop.left, top: crop.top, cropWidth: crop.width, cropHeight: crop.height)
        return rescaleNormalizeHuggingFace(current, rescale: config.doRescale ? config.rescaleFactor : nil,
                                           mean: config.doNormalize ? config.imageMean : nil,
                                           std: config.doNormalize ? config.imageStd : nil)
    }

    /// What a Hugging Face processor does to a `width × height` image: the
    /// resize target (the image's own size when it does not resize), the filter,
    /// and the crop window in the resized image's coordinates.
    private static func huggingFacePlan(width: Int, height: Int, config: ImagePreprocessingConfig) throws
        -> (width: Int, height: Int, filter: ResampleFilter, crop: (left: Int, top: Int, width: Int, height: Int)?) {
        var target = (width: width, height: height)
        var filter = ResampleFilter.bicubic
        if config.doResize {
            guard let chosen = ResampleFilter(pillowCode: config.resample) else {
                throw ImagePreprocessingError.unsupportedResample(config.resample)
            }
            filter = chosen
            let size = config.size.resolved(defaultToSquare: config.isBlip)
            if let edge = size.shortestEdge, size.longestEdge == nil, edge > 0 {
                target = shortestEdgeSize(width: width, height: height, to: edge)
            } else if let h = size.height, let w = size.width, h > 0, w > 0 {
                target = (w, h)
            } else {
                throw ImagePreprocessingError.unsupportedSize("size \(size)")
            }
        }
        guard config.doCenterCrop, let crop = config.cropSize else { return (target.width, target.height, filter, nil) }
        guard let h = crop.height, let w = crop.width, h > 0, w > 0 else {
            throw ImagePreprocessingError.unsupportedSize("crop_size \(crop)")
        }
        return (target.width, target.height, filter,
                (huggingFaceCropOffset(target.width, w), huggingFaceCropOffset(target.height, h), w, h))
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

    private static func requireNonEmpty(_ image: RGBImage) throws {
        guard image.width > 0, image.height > 0 else {
            throw ImagePreprocessingError.unsupportedSize("an image of \(image.width)x\(image.height) pixels")
        }
    }

    /// The output size of a shortest-edge resize (torchvision's
    /// `_compute_resized_output_size` and transformers'
    /// `get_resize_output_image_size`): short side → `size`, long side →
    /// `int(size * long / short)`. Both sides must be positive.
    public static func shortestEdgeSize(width: Int, height: Int, to size: Int) -> (width: Int, height: Int) {
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        return width <= height ? (size, newLong) : (newLong, size)
    }

    /// Resize so that the shorter side is `size` (see ``shortestEdgeSize(width:height:to:)``).
    /// - Throws: ``ResampleError``.
    public static func resizeShortestEdge(_ image: RGBImage, to size: Int,
                                          filter: ResampleFilter = .bicubic) throws -> RGBImage {
        try requireNonEmpty(image)
        let target = shortestEdgeSize(width: image.width, height: image.height, to: size)
        return try image.resized(width: target.width, height: target.height, filter: filter)
    }

    /// The `cropWidth × cropHeight` window at (`left`, `top`) of `image` resized
    /// to `width × height` (zero where the window leaves the resized image, as
    /// both reference crops pad), computing only the pixels the window keeps:
    /// byte-identical to resizing the whole image and cropping it, at a cost
    /// bounded by the window instead of the resized image.
    /// - Throws: ``ResampleError``.
    public static func resizedCrop(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter,
                                   left: Int, top: Int, cropWidth: Int, cropHeight: Int) throws -> RGBImage {
        func kept(_ start: Int, _ length: Int, _ size: Int) -> Range<Int> {
            let lower = min(max(start, 0), size)
            return lower..<max(lower, min(start + length, size))
        }
        let columns = kept(left, cropWidth, width), rows = kept(top, cropHeight, height)
        let window = try image.resized(width: width, height: height, filter: filter, columns: columns, rows: rows)
        if window.width == cropWidth && window.height == cropHeight { return window }
        return crop(window, left: left - columns.lowerBound, top: top - rows.lowerBound, width: cropWidth, height: cropHeight)
    }

    /// torchvision's `center_crop` offset along one axis of `size` pixels: when
    /// the crop is larger, the image is padded by `(crop - size) // 2` first;
    /// otherwise `int(round((size - crop) / 2.0))`, Python's half-to-even.
    static func torchvisionCropOffset(_ size: Int, _ crop: Int) -> Int {
        crop > size ? -((crop - size) / 2) : Int((Double(size - crop) / 2.0).rounded(.toNearestOrEven))
    }

    /// transformers' `center_crop` offset along one axis: `(size - crop) // 2`
    /// (floor), which also places a smaller image at `ceil((crop - size) / 2)`
    /// on its zero canvas.
    static func huggingFaceCropOffset(_ size: Int, _ crop: Int) -> Int {
        let difference = size - crop
        return difference >= 0 ? difference / 2 : -((-difference + 1) / 2)
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

    /// Images of equal width stacked top to bottom (`vertically`), or of equal
    /// height side by side.
    static func stitch(_ parts: [RGBImage], vertically: Bool) -> RGBImage {
        if vertically {
            return RGBImage(width: parts[0].width, height: parts.reduce(0) { $0 + $1.height }, pixels: parts.flatMap(\.pixels))
        }
        let height = parts[0].height, width = parts.reduce(0) { $0 + $1.width }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * 3)
        for y in 0..<height {
            for part in parts { pixels += part.pixels[(y * part.width * 3)..<((y + 1) * part.width * 3)] }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// torchvision's `center_crop` on a PIL image: zero padding when the image
    /// is smaller (left/top get the floor half), then offsets
    /// `int(round((h - ch) / 2.0))` with Python's half-to-even rounding
    /// (`torchvisionCropOffset`).
    public static func centerCropTorchvision(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
        crop(image, left: torchvisionCropOffset(image.width, width), top: torchvisionCropOffset(image.height, height),
             width: width, height: height)
    }

    /// transformers' `center_crop` (image_transforms.py): offsets
    /// `(h - ch) // 2`; a smaller image is first placed on a zero canvas at
    /// `ceil(pad / 2)` (`huggingFaceCropOffset`).
    public static func centerCropHuggingFace(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
        crop(image, left: huggingFaceCropOffset(image.width, width), top: huggingFaceCropOffset(image.height, height),
             width: width, height: height)
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
