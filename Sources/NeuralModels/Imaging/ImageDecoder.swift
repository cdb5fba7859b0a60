// PNG/JPEG decoding with the exact result of Pillow's
// `Image.open(f).convert("RGB")` (Pillow 12/13).
//
// The codec libraries (libpng, libjpeg through the CImageCodecs shim) only
// produce raw samples; the mode conversion Pillow performs is done here:
//   PngImagePlugin._MODES + Unpack.c unpackers + Convert.c converters,
//   JpegImagePlugin (CMYK read as Adobe-inverted "CMYK;I") + Convert.c cmyk2rgb.

import CImageCodecs
import Foundation
import NeuralCore

/// Decodes PNG and JPEG files into ``RGBImage`` exactly as Pillow's
/// `Image.open(f).convert("RGB")` does: no EXIF rotation, no colour
/// management, no gamma, alpha dropped (not composited).
public enum ImageDecoder {
    /// Pillow's decompression-bomb limit: `Image.open` refuses images of more
    /// than `2 * Image.MAX_IMAGE_PIXELS` (2 × 89,478,485) pixels; so does this
    /// decoder, with ``ImageDecodingError/tooLarge(format:message:)``, before
    /// allocating anything.
    public static let maximumPixels = 2 * 89_478_485

    /// The largest file ``decode(contentsOf:)`` reads (1 GiB), refused before
    /// reading. Pillow has no such limit; an image at the pixel limit needs far
    /// less unless it is padded with junk.
    public static let maximumFileBytes = 1 << 30

    /// Reads and decodes the file at `url`. Only regular files are read (a FIFO
    /// or a device is refused without blocking on it), the signature is checked
    /// before the rest of the file is read, and files over ``maximumFileBytes``
    /// are refused.
    public static func decode(contentsOf url: URL) throws -> RGBImage {
        try decode(data: readImageFile(url.path))
    }

    /// The bytes of the image file at `path`, after the checks of
    /// ``decode(contentsOf:)``.
    static func readImageFile(_ path: String) throws -> Data {
        do {
            return try readRegularFile(path, limit: maximumFileBytes, signatureLength: 8) { detectFormat($0) != nil }
        } catch let error as FileError {
            if error.code == ENOENT { throw ImageDecodingError.fileNotFound(path: path) }
            throw ImageDecodingError.unreadable(path: path, reason: error.reason ?? String(cString: strerror(error.code)))
        }
    }

    /// Decodes an in-memory PNG or JPEG, detected by its signature.
    public static func decode(data: Data) throws -> RGBImage {
        guard let format = detectFormat(data) else {
            if data.isEmpty {
                throw ImageDecodingError.unsupportedFormat("empty file")
            }
            throw ImageDecodingError.unsupportedFormat("cannot identify image file (unknown signature)")
        }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            let bytes = raw.bindMemory(to: UInt8.self)
            switch format {
            case .png: return try decodePNG(bytes)
            case .jpeg: return try decodeJPEG(bytes)
            }
        }
    }

    /// The format announced by the first bytes, as Pillow's `_accept` checks
    /// (`\x89PNG\r\n\x1a\n` for PNG, `\xff\xd8\xff` for JPEG).
    public static func detectFormat(_ data: Data) -> ImageFormat? {
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if data.count >= 8 && data.prefix(8).elementsEqual(pngSignature) {
            return .png
        }
        if data.count >= 3 && data.prefix(3).elementsEqual([0xFF, 0xD8, 0xFF]) {
            return .jpeg
        }
        return nil
    }

    // MARK: - Codec calls

    /// Runs a CImageCodecs decoder and maps its status to a typed error.
    private static func runCodec(
        _ format: ImageFormat,
        _ bytes: UnsafeBufferPointer<UInt8>,
        _ decoder: (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<CICRaster>) -> CICStatus,
        _ convert: (CICRaster) throws -> RGBImage
    ) throws -> RGBImage {
        var raster = CICRaster()
        let status = decoder(bytes.baseAddress, bytes.count, &raster)
        defer { cic_raster_free(&raster) }
        let message = withUnsafeBytes(of: raster.message) { buffer -> String in
            let chars = buffer.bindMemory(to: UInt8.self)
            let end = chars.firstIndex(of: 0) ?? chars.count
            return String(decoding: chars[0..<end], as: UTF8.self)
        }
        switch status {
        case CIC_OK:
            guard raster.samples != nil else {
                throw ImageDecodingError.corrupt(format: format, message: "decoder produced no samples")
            }
            return try convert(raster)
        case CIC_TRUNCATED:
            throw ImageDecodingError.truncated(format: format, message: message)
        case CIC_UNSUPPORTED:
            throw ImageDecodingError.unsupportedFormat("\(format.rawValue): \(message)")
        case CIC_NO_MEMORY:
            throw ImageDecodingError.tooLarge(format: format, message: message)
        default:
            throw ImageDecodingError.corrupt(format: format, message: message)
        }
    }

    // MARK: - PNG

    private static func decodePNG(_ bytes: UnsafeBufferPointer<UInt8>) throws -> RGBImage {
        let header = try PNGHeaderScanner.scan(bytes)
        // Each side may be up to 2^32 - 1: the product can overflow 64 bits.
        let (pixels, overflow) = max(header.width, 1).multipliedReportingOverflow(by: max(header.height, 1))
        if overflow || pixels > maximumPixels {
            throw ImageDecodingError.tooLarge(format: .png, message: "\(header.width) x \(header.height) pixels exceeds the limit")
        }
        return try runCodec(.png, bytes, { cic_decode_png($0, $1, $2) }) { raster in
            guard Int(raster.width) == header.width, Int(raster.height) == header.height,
                  Int(raster.bit_depth) == header.bitDepth, Int(raster.color_type) == header.colorType
            else {
                throw ImageDecodingError.corrupt(format: .png, message: "header and decoded image disagree")
            }
            return convertPNG(raster, palette: header.palette)
        }
    }

    /// Pillow's PNG conversion to RGB, by (colour type, bit depth):
    /// - gray 1-bit: mode "1", `bit2rgb` (non-zero → 255);
    /// - gray 2/4-bit: mode "L" with unpackers `L;2` (×0x55) and `L;4` (×0x11);
    /// - gray 16-bit: mode "I;16", `I16_RGB` clips: `v > 255 ? 255 : v`;
    /// - RGB/RGBA/gray+alpha 16-bit: the unpackers `RGB;16B`, `RGBA;16B`,
    ///   `LA;16B` keep the high byte;
    /// - palette: indices through the PLTE colours; entries past the PLTE are
    ///   black (Pillow's palette is zero-initialised);
    /// - alpha is dropped.
    private static func convertPNG(_ raster: CICRaster, palette: [UInt8]) -> RGBImage {
        let width = Int(raster.width), height = Int(raster.height)
        let channels = Int(raster.channels)
        let bitDepth = Int(raster.bit_depth)
        let sampleBytes = Int(raster.bytes_per_sample)
        let count = width * height
        let source = UnsafeBufferPointer(start: raster.samples, count: raster.samples_size)
        var pixels = [UInt8](repeating: 0, count: count * 3)
        pixels.withUnsafeMutableBufferPointer { out in
            switch raster.color_type {
            case 0:  // grayscale
                for i in 0..<count {
                    let v: UInt8
                    switch bitDepth {
                    case 1: v = source[i] != 0 ? 255 : 0
                    case 2: v = source[i] &* 0x55
                    case 4: v = source[i] &* 0x11
                    case 16: v = source[2 * i] == 0 ? source[2 * i + 1] : 255
                    default: v = source[i]
                    }
                    out[3 * i] = v
                    out[3 * i + 1] = v
                    out[3 * i + 2] = v
                }
            case 3:  // palette
                var table = [UInt8](repeating: 0, count: 256 * 3)
                let entries = min(palette.count / 3, 256)
                for i in 0..<(entries * 3) { table[i] = palette[i] }
                for i in 0..<count {
                    let index = Int(source[i]) * 3
                    out[3 * i] = table[index]
                    out[3 * i + 1] = table[index + 1]
                    out[3 * i + 2] = table[index + 2]
                }
            default:  // 2 RGB, 4 gray+alpha, 6 RGBA: keep the (high) byte of each colour sample
                let pixelBytes = channels * sampleBytes
                let gray = raster.color_type == 4
                for i in 0..<count {
                    let base = i * pixelBytes
                    if gray {
                        let v = source[base]
                        out[3 * i] = v
                        out[3 * i + 1] = v
                        out[3 * i + 2] = v
                    } else {
                        out[3 * i] = source[base]
                        out[3 * i + 1] = source[base + sampleBytes]
                        out[3 * i + 2] = source[base + 2 * sampleBytes]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    // MARK: - JPEG

    private static func decodeJPEG(_ bytes: UnsafeBufferPointer<UInt8>) throws -> RGBImage {
        try runCodec(.jpeg, bytes, { cic_decode_jpeg($0, $1, UInt64(maximumPixels), $2) }) { raster in
            convertJPEG(raster)
        }
    }

    /// Pillow's JPEG conversion to RGB: "L" replicated, "RGB" as is, and
    /// "CMYK" read with rawmode `CMYK;I` (every sample inverted, the Adobe
    /// convention) and then `cmyk2rgb`:
    /// `nk = 255 - k; out = clip8(nk - muldiv255(c, nk))`.
    private static func convertJPEG(_ raster: CICRaster) -> RGBImage {
        let width = Int(raster.width), height = Int(raster.height)
        let channels = Int(raster.channels)
        let count = width * height
        let source = UnsafeBufferPointer(start: raster.samples, count: raster.samples_size)
        var pixels = [UInt8](repeating: 0, count: count * 3)
        pixels.withUnsafeMutableBufferPointer { out in
            switch channels {
            case 1:
                for i in 0..<count {
                    let v = source[i]
                    out[3 * i] = v
                    out[3 * i + 1] = v
                    out[3 * i + 2] = v
                }
            case 3:
                for i in 0..<(count * 3) { out[i] = source[i] }
            default:
                for i in 0..<count {
                    let base = i * channels
                    // Image samples after the CMYK;I unpacker.
                    let c = 255 - Int(source[base]), m = 255 - Int(source[base + 1])
                    let y = 255 - Int(source[base + 2]), k = 255 - Int(source[base + 3])
                    let nk = 255 - k
                    out[3 * i] = clip8(nk - mulDiv255(c, nk))
                    out[3 * i + 1] = clip8(nk - mulDiv255(m, nk))
                    out[3 * i + 2] = clip8(nk - mulDiv255(y, nk))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Pillow's `MULDIV255(a, b)`: `a * b / 255` rounded, by shifts.
    @inline(__always)
    private static func mulDiv255(_ a: Int, _ b: Int) -> Int {
        let t = a * b + 128
        return ((t >> 8) + t) >> 8
    }

    /// Pillow's `CLIP8`.
    @inline(__always)
    private static func clip8(_ v: Int) -> UInt8 {
        v <= 0 ? 0 : (v < 256 ? UInt8(v) : 255)
    }
}
