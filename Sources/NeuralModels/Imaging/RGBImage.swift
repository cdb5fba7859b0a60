import Foundation
// The decoded-image value type and the decoding errors.

/// An 8-bit RGB image: rows top to bottom, pixels left to right, samples
/// interleaved `R, G, B`. This is what Pillow's `Image.open(f).convert("RGB")`
/// holds, byte for byte.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// `width * height * 3` bytes, row-major, RGB interleaved.
    public var pixels: [UInt8]

    /// Wraps existing RGB bytes. `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size")
        precondition(pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image of the given size.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
    }

    /// The pixel at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// The container formats ``ImageDecoder`` reads.
public enum ImageFormat: String, Sendable, Equatable {
    case png = "PNG"
    case jpeg = "JPEG"
}

/// Why an image could not be decoded. Decoding never traps: every failure of
/// the file system, the container or the codec library ends up here.
public enum ImageDecodingError: Error, Equatable, CustomStringConvertible {
    /// No file at this path.
    case fileNotFound(path: String)
    /// The file exists but could not be read.
    case unreadable(path: String, reason: String)
    /// Not a PNG or JPEG (by signature), an empty file, or a variant this
    /// decoder does not handle (e.g. a 12-bit or 2-channel JPEG).
    case unsupportedFormat(String)
    /// The codec or the container parser rejected the data; the message is
    /// the library's (libpng, libjpeg) or Pillow's wording of the problem.
    case corrupt(format: ImageFormat, message: String)
    /// The data ends before the image does. Pillow raises here too, since
    /// `ImageFile.LOAD_TRUNCATED_IMAGES` is off by default.
    case truncated(format: ImageFormat, message: String)
    /// The image is too large to hold in memory.
    case tooLarge(format: ImageFormat, message: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "image file not found: \(path)"
        case .unreadable(let path, let reason): return "cannot read image file \(path): \(reason)"
        case .unsupportedFormat(let what): return "unsupported image format: \(what)"
        case .corrupt(let format, let message): return "corrupt \(format.rawValue) image: \(message)"
        case .truncated(let format, let message): return "truncated \(format.rawValue) image: \(message)"
        case .tooLarge(let format, let message): return "\(format.rawValue) image too large: \(message)"
        }
    }
}

extension ImageDecodingError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
