// Parity of NeuralModels/Imaging with Pillow 13 / torchvision / transformers.
// Fixtures: Tests/Fixtures/imaging, written by Weights/fixtures/make_imaging_fixtures.py.

import Foundation
import TestSupport
import XCTest
@testable import NeuralModels

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/imaging")

private struct Manifest: Decodable {
    struct Decode: Decodable {
        var input: String
        var golden: String?
        var pillow_mode: String
        var width: Int
        var height: Int
        var crc32: UInt32
    }
    struct Resize: Decodable {
        var source: String
        var width: Int
        var height: Int
        var filter: String
        var golden: String
        var crc32: UInt32
    }
    struct TensorCase: Decodable {
        var source: String
        var pipeline: String
        var size: Int?
        var mean: [Double]?
        var std: [Double]?
        var config: String?
        var shape: [Int]
        var golden: String
    }
    struct ErrorCase: Decodable {
        var file: String
        var expected: String
        var pillow_ok: Bool
        var pillow_error: String?
        var golden: String?
        var crc32: UInt32?
    }
    var decode: [Decode]
    var resize: [Resize]
    var tensors: [TensorCase]
    var errors: [ErrorCase]
}

private func loadManifest() throws -> Manifest {
    try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: fixtures.appendingPathComponent("manifest.json")))
}

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBufferPointer { ImagingCRC32.checksum($0) }
}

/// Loads a golden RGB8 PNG and checks it against the manifest's CRC first, so
/// a wrong golden cannot hide behind a wrong decoder.
private func loadGolden(_ relative: String, crc: UInt32) throws -> RGBImage {
    let image = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent(relative))
    XCTAssertEqual(crc32(image.pixels), crc, "golden \(relative) does not match its CRC")
    return image
}

/// Count of differing bytes, the largest difference and the first few positions.
private func compare(_ a: RGBImage, _ b: RGBImage) -> (differing: Int, maxDiff: Int, first: [String]) {
    guard a.width == b.width, a.height == b.height else {
        return (Int.max, 255, ["size \(a.width)x\(a.height) vs \(b.width)x\(b.height)"])
    }
    var differing = 0, maxDiff = 0
    var first: [String] = []
    for i in 0..<a.pixels.count where a.pixels[i] != b.pixels[i] {
        differing += 1
        let d = abs(Int(a.pixels[i]) - Int(b.pixels[i]))
        maxDiff = max(maxDiff, d)
        if first.count < 5 {
            let p = i / 3
            first.append("(x \(p % a.width), y \(p / a.width), c \(i % 3)): \(a.pixels[i]) vs \(b.pixels[i])")
        }
    }
    return (differing, maxDiff, first)
}

private func readFloats(_ relative: String) throws -> [Float] {
    let data = try Data(contentsOf: fixtures.appendingPathComponent(relative))
    return data.withUnsafeBytes { raw in
        (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }
}

private func filterNamed(_ name: String) -> ResampleFilter {
    switch name {
    case "bilinear": return .bilinear
    case "lanczos": return .lanczos
    case "box": return .box
    case "hamming": return .hamming
    default: return .bicubic
    }
}

final class ImagingTests: XCTestCase {
    // MARK: Decoding

    func testDecodedPixelsEqualPillow() throws {
        let manifest = try loadManifest()
        var bytesCompared = 0
        for entry in manifest.decode {
            let image = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent(entry.input))
            XCTAssertEqual(image.width, entry.width, entry.input)
            XCTAssertEqual(image.height, entry.height, entry.input)
            XCTAssertEqual(crc32(image.pixels), entry.crc32,
                           "\(entry.input) (Pillow mode \(entry.pillow_mode)): pixels differ from Pillow's")
            if let golden = entry.golden {
                let expected = try loadGolden(golden, crc: entry.crc32)
                let result = compare(image, expected)
                XCTAssertEqual(result.differing, 0,
                               "\(entry.input): \(result.differing) bytes differ, max \(result.maxDiff): \(result.first)")
            }
            bytesCompared += image.pixels.count
        }
        print("ImagingTests: \(manifest.decode.count) files, \(bytesCompared) decoded bytes identical to Pillow")
    }

    func testDecodeFromDataMatchesDecodeFromFile() throws {
        let url = fixtures.appendingPathComponent("inputs/jpeg_rgb_progressive_7x500.jpg")
        XCTAssertEqual(try ImageDecoder.decode(data: Data(contentsOf: url)), try ImageDecoder.decode(contentsOf: url))
    }

    func testCorruptFilesGiveTypedErrorsLikePillow() throws {
        let manifest = try loadManifest()
        for entry in manifest.errors {
            let url = fixtures.appendingPathComponent(entry.file)
            if entry.pillow_ok {
                let image = try ImageDecoder.decode(contentsOf: url)
                XCTAssertEqual(crc32(image.pixels), entry.crc32, "\(entry.file): Pillow decodes it to other pixels")
                continue
            }
            do {
                _ = try ImageDecoder.decode(contentsOf: url)
                XCTFail("\(entry.file): decoded, but Pillow raises \(entry.pillow_error ?? "")")
            } catch let error as ImageDecodingError {
                let kind: String
                switch error {
                case .truncated: kind = "truncated"
                case .corrupt: kind = "corrupt"
                case .unsupportedFormat: kind = "unsupported"
                default: kind = "\(error)"
                }
                XCTAssertEqual(kind, entry.expected, "\(entry.file): \(error) (Pillow: \(entry.pillow_error ?? ""))")
            }
        }
    }

    func testFileSystemErrors() throws {
        let missing = fixtures.appendingPathComponent("inputs/does-not-exist.png")
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: missing)) { error in
            XCTAssertEqual(error as? ImageDecodingError, .fileNotFound(path: missing.path))
        }
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent("inputs"))) { error in
            guard case .unreadable = error as? ImageDecodingError else {
                return XCTFail("directory: \(error)")
            }
        }
    }

    func testDecompressionBombsAreRefused() throws {
        // PNG: a valid IHDR announcing 20000 x 20000 pixels.
        var ihdr: [UInt8] = Array("IHDR".utf8)
        for v in [UInt32(20000), UInt32(20000)] { ihdr += withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        ihdr += [8, 2, 0, 0, 0]
        let crc = withUnsafeBytes(of: crc32(ihdr).bigEndian) { Array($0) }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr + crc
            + [0, 0, 0, 0] + Array("IDAT".utf8) + [0, 0, 0, 0]
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(png))) { error in
            guard case .tooLarge(.png, _) = error as? ImageDecodingError else { return XCTFail("\(error)") }
        }
        // JPEG: a real file whose SOF0 is patched to 30000 x 30000.
        var jpeg = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("inputs/jpeg_rgb_1x1.jpg")))
        let sof = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0x75, 0x30, 0x75, 0x30])
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(jpeg))) { error in
            guard case .tooLarge(.jpeg, _) = error as? ImageDecodingError else { return XCTFail("\(error)") }
        }
    }

    func testEveryPrefixOfAFileFailsCleanly() throws {
        // Never crash, whatever the cut: every strict prefix is an error.
        for name in ["inputs/png_rgb8_interlaced_33x17.png", "inputs/png_rgba16_33x17.png",
                     "inputs/png_pal4_interlaced_33x17.png", "inputs/jpeg_rgb_progressive_7x500.jpg",
                     "inputs/jpeg_rgb_baseline420_33x17.jpg", "inputs/jpeg_cmyk_33x17.jpg"] {
            let data = try Data(contentsOf: fixtures.appendingPathComponent(name))
            let full = try ImageDecoder.decode(data: data)
            for cut in Swift.stride(from: 0, to: data.count, by: max(1, data.count / 97)) {
                do {
                    let image = try ImageDecoder.decode(data: data.prefix(cut))
                    // A PNG cut inside trailing chunks still holds the image.
                    XCTAssertEqual(image, full, "\(name) cut at \(cut)")
                } catch is ImageDecodingError {
                }
            }
        }
    }

    // MARK: Resampling

    func testResizeEqualsPillow() throws {
        let manifest = try loadManifest()
        var total = 0
        for entry in manifest.resize {
            let source = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent(entry.source))
            let resized = try source.resized(width: entry.width, height: entry.height, filter: filterNamed(entry.filter))
            let expected = try loadGolden(entry.golden, crc: entry.crc32)
            let result = compare(resized, expected)
            XCTAssertEqual(result.differing, 0,
                           "\(entry.source) → \(entry.width)x\(entry.height) \(entry.filter): \(result.differing) of "
                           + "\(expected.pixels.count) bytes differ, max \(result.maxDiff): \(result.first)")
            total += expected.pixels.count
        }
        print("ImagingTests: \(manifest.resize.count) resizes, \(total) bytes identical to Pillow")
    }

    func testResizeMatchesNaiveTwinOverShapeSweep() throws {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<60 {
            let w = Int.random(in: 1...70, using: &generator), h = Int.random(in: 1...70, using: &generator)
            let ow = Int.random(in: 1...90, using: &generator), oh = Int.random(in: 1...90, using: &generator)
            let pixels = (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let image = RGBImage(width: w, height: h, pixels: pixels)
            for filter in [ResampleFilter.bicubic, .bilinear, .lanczos] {
                let fast = try image.resized(width: ow, height: oh, filter: filter)
                let naive = naiveResize(image, width: ow, height: oh, filter: filter)
                XCTAssertEqual(fast, naive, "\(w)x\(h) → \(ow)x\(oh) \(filter)")
            }
        }
    }

    func testParallelResizeIsDeterministic() throws {
        var generator = SplitMix64(seed: 11)
        let w = 1200, h = 900
        let pixels = (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let image = RGBImage(width: w, height: h, pixels: pixels)
        let a = try image.resized(width: 224, height: 168)
        // Same passes, one chunk each.
        let v = ResampleCoefficients(inSize: h, in0: 0, in1: Float(h), outSize: 168, filter: .bicubic)
        var shifted = v
        let firstRow = v.first[0], lastRow = v.first[167] + v.count[167]
        for i in 0..<168 { shifted.first[i] -= firstRow }
        let hc = ResampleCoefficients(inSize: w, in0: 0, in1: Float(w), outSize: 224, filter: .bicubic)
        let b = naiveVertical(naiveHorizontal(image, rows: firstRow..<lastRow, hc), shifted)
        XCTAssertEqual(a, b)
    }

    // MARK: Preprocessing

    func testPreprocessedTensorsMatchReference() throws {
        let manifest = try loadManifest()
        var worst: Float = 0
        var exact = 0, count = 0
        for entry in manifest.tensors {
            let image = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent(entry.source))
            let tensor: [Float]
            if entry.pipeline == "openclip" {
                tensor = try ImagePreprocessing.openCLIP(image, size: entry.size!, mean: entry.mean!, std: entry.std!)
            } else {
                let config = try ImagePreprocessingConfig(contentsOf: fixtures.appendingPathComponent(entry.config!))
                tensor = try ImagePreprocessing.huggingFace(image, config: config)
            }
            let expected = try readFloats(entry.golden)
            XCTAssertEqual(tensor.count, expected.count, "\(entry.golden): shape \(entry.shape)")
            guard tensor.count == expected.count else { continue }
            var maxDiff: Float = 0
            var firstBad: String?
            for i in 0..<tensor.count {
                let d = abs(tensor[i] - expected[i])
                if d > maxDiff { maxDiff = d }
                if d == 0 { exact += 1 } else if firstBad == nil { firstBad = "[\(i)] \(tensor[i]) vs \(expected[i])" }
            }
            count += tensor.count
            worst = max(worst, maxDiff)
            XCTAssertLessThanOrEqual(maxDiff, 1e-6, "\(entry.golden): max |diff| \(maxDiff), first \(firstBad ?? "-")")
        }
        print("ImagingTests: \(manifest.tensors.count) tensors, \(exact)/\(count) values bit-identical, max |diff| \(worst)")
    }

    func testShortestEdgeAndCropRules() {
        XCTAssertEqual(ImagePreprocessing.shortestEdgeSize(width: 225, height: 300, to: 224).height, 298)
        XCTAssertEqual(ImagePreprocessing.shortestEdgeSize(width: 3000, height: 20, to: 64).width, 9600)
        XCTAssertEqual(ImagePreprocessing.shortestEdgeSize(width: 33, height: 17, to: 16).width, 31)
        // 31 - 16 = 15: torchvision rounds 7.5 to 8 (half to even), transformers floors to 7.
        let strip = RGBImage(width: 31, height: 1, pixels: (0..<93).map { UInt8($0 / 3) })
        XCTAssertEqual(ImagePreprocessing.centerCropTorchvision(strip, height: 1, width: 16)[0, 0].r, 8)
        XCTAssertEqual(ImagePreprocessing.centerCropHuggingFace(strip, height: 1, width: 16)[0, 0].r, 7)
        // Padding when the crop is larger than the image.
        let tiny = RGBImage(width: 1, height: 1, pixels: [9, 9, 9])
        let padded = ImagePreprocessing.centerCropTorchvision(tiny, height: 4, width: 4)
        XCTAssertEqual(padded[1, 1].r, 9)
        XCTAssertEqual(padded.pixels.filter { $0 != 0 }.count, 3)
        let paddedHF = ImagePreprocessing.centerCropHuggingFace(tiny, height: 4, width: 4)
        XCTAssertEqual(paddedHF[2, 2].r, 9)
    }

    func testPreprocessorConfigDecoding() throws {
        let old = """
        {"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
         "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.5, 0.5, 0.5],
         "image_std": [0.25, 0.25, 0.25], "resample": 3, "size": 224}
        """
        let clip = try JSONDecoder().decode(ImagePreprocessingConfig.self, from: Data(old.utf8))
        XCTAssertEqual(clip.size, ImageSizeSpec(shortestEdge: 224))
        XCTAssertEqual(clip.cropSize, ImageSizeSpec(height: 224, width: 224))
        XCTAssertTrue(clip.doRescale)
        XCTAssertEqual(clip.rescaleFactor, 1.0 / 255.0)
        XCTAssertEqual(clip.imageMean, [0.5, 0.5, 0.5])
        let blipJSON = """
        {"image_processor_type": "BlipImageProcessor", "size": {"height": 384, "width": 384},
         "resample": 3, "rescale_factor": 0.00392156862745098}
        """
        let blip = try JSONDecoder().decode(ImagePreprocessingConfig.self, from: Data(blipJSON.utf8))
        XCTAssertTrue(blip.isBlip)
        XCTAssertFalse(blip.doCenterCrop)
        XCTAssertEqual(blip.size, ImageSizeSpec(height: 384, width: 384))
        XCTAssertEqual(blip.imageStd, ImagePreprocessingConfig.openAIStd)
        XCTAssertEqual(blip.outputSize?.height, 384)
        let intBlip = try JSONDecoder().decode(ImagePreprocessingConfig.self,
                                               from: Data(#"{"image_processor_type": "BlipImageProcessor", "size": 96}"#.utf8))
        XCTAssertEqual(intBlip.size, ImageSizeSpec(height: 96, width: 96))
        XCTAssertEqual(ResampleFilter(pillowCode: 3), .bicubic)
        XCTAssertNil(ResampleFilter(pillowCode: 0))
        var nearest = ImagePreprocessingConfig(blip: true)
        nearest.resample = 0
        XCTAssertThrowsError(try ImagePreprocessing.huggingFace(RGBImage(width: 2, height: 2), config: nearest))
    }

    func testBlipHelperEqualsConfigPipeline() throws {
        let image = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent("inputs/png_rgb8_33x17.png"))
        let config = try ImagePreprocessingConfig(contentsOf: fixtures.appendingPathComponent("configs/blip72.json"))
        XCTAssertEqual(try ImagePreprocessing.blip(image, size: 72), try ImagePreprocessing.huggingFace(image, config: config))
    }
}

// MARK: - Naive twins

/// Pillow's ImagingResampleInner written as plainly as the C: coefficients
/// from the production code, then straight loops.
private func naiveResize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter) -> RGBImage {
    if width == image.width && height == image.height { return image }
    let horizontalFirst = !((image.height - height) > 0 && (image.height - height) > (image.width - width) * 2)
    var v = ResampleCoefficients(inSize: image.height, in0: 0, in1: Float(image.height), outSize: height, filter: filter)
    let h = ResampleCoefficients(inSize: image.width, in0: 0, in1: Float(image.width), outSize: width, filter: filter)
    var current = image
    if horizontalFirst {
        if width != image.width {
            let first = v.first[0], last = v.first[height - 1] + v.count[height - 1]
            for i in 0..<height { v.first[i] -= first }
            current = naiveHorizontal(current, rows: first..<last, h)
        }
        if height != image.height { current = naiveVertical(current, v) }
    } else {
        if height != image.height { current = naiveVertical(current, v) }
        if width != image.width { current = naiveHorizontal(current, rows: 0..<current.height, h) }
    }
    return current
}

private func naiveClip(_ s: Int) -> UInt8 { UInt8(min(max(s >> 22, 0), 255)) }

private func naiveHorizontal(_ image: RGBImage, rows: Range<Int>, _ c: ResampleCoefficients) -> RGBImage {
    let outWidth = c.first.count
    var out = RGBImage(width: outWidth, height: rows.count)
    for yy in 0..<rows.count {
        for xx in 0..<outWidth {
            for ch in 0..<3 {
                var s = 1 << 21
                for x in 0..<c.count[xx] {
                    s += Int(image.pixels[((yy + rows.lowerBound) * image.width + c.first[xx] + x) * 3 + ch])
                        * Int(c.weights[xx * c.ksize + x])
                }
                out.pixels[(yy * outWidth + xx) * 3 + ch] = naiveClip(s)
            }
        }
    }
    return out
}

private func naiveVertical(_ image: RGBImage, _ c: ResampleCoefficients) -> RGBImage {
    let outHeight = c.first.count
    var out = RGBImage(width: image.width, height: outHeight)
    for yy in 0..<outHeight {
        for xx in 0..<image.width {
            for ch in 0..<3 {
                var s = 1 << 21
                for y in 0..<c.count[yy] {
                    s += Int(image.pixels[((c.first[yy] + y) * image.width + xx) * 3 + ch]) * Int(c.weights[yy * c.ksize + y])
                }
                out.pixels[(yy * image.width + xx) * 3 + ch] = naiveClip(s)
            }
        }
    }
    return out
}

/// Small seeded generator for reproducible sweeps.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
