import Foundation
import NeuralCore
@testable import NeuralModels
import TestSupport
import XCTest

/// Issue 13: hostile and odd files give typed errors naming the file and the
/// key, never a trap or an allocation sized by a number in the file. Every
/// hostile file is made here, at test time, from the tiny fixtures.
final class HostileInputTests: TemporaryDirectoryTestCase {
    // MARK: Images

    /// A 57-byte PNG claiming 4,294,967,295 × 4,294,967,295 pixels: the pixel
    /// count overflows 64 bits (it trapped), and is refused as too large.
    func testPNGHeaderOverflowingThePixelCountIsTooLarge() throws {
        let png = PNGBuilder.signature + PNGBuilder.header(width: 0xFFFF_FFFF, height: 0xFFFF_FFFF)
            + PNGBuilder.chunk("IDAT", []) + PNGBuilder.chunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(png))) { error in
            guard case ImageDecodingError.tooLarge(.png, _) = error else { return XCTFail("\(error)") }
        }
        // One pixel past the limit, without overflow: refused the same way.
        let past = PNGBuilder.signature + PNGBuilder.header(width: UInt32(ImageDecoder.maximumPixels / 2 + 1), height: 2)
            + PNGBuilder.chunk("IDAT", []) + PNGBuilder.chunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(past))) { error in
            guard case ImageDecodingError.tooLarge(.png, _) = error else { return XCTFail("\(error)") }
        }
    }

    /// IDAT chunks that resume after another chunk made libpng announce the image
    /// twice, and the first pixel buffer leaked (found by the PNG fuzzer; the
    /// file is kept as a seed). The image is refused, as Pillow refuses it.
    func testPNGWhoseImageDataResumesAfterAnotherChunkIsRefused() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/seeds/png/finding-leak-idat-after-chunk.png")
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(contentsOf: url))) { error in
            guard error is ImageDecodingError else { return XCTFail("\(error)") }
        }
    }

    /// A progressive JPEG of 5,000 scans is refused past the 500-scan cap (as
    /// `djpeg -maxscans`), quickly; one of 20 scans still decodes.
    func testProgressiveJPEGScansAreCapped() throws {
        let few = try ImageDecoder.decode(data: Data(JPEGBuilder.progressiveGray(scans: 20)))
        XCTAssertEqual([few.width, few.height], [8, 8])
        let start = Date()
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(JPEGBuilder.progressiveGray(scans: 5_000)))) { error in
            guard case let ImageDecodingError.corrupt(.jpeg, message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("more than 500 scans"), message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    /// A FIFO named like an image is refused at once (it blocked waiting for a
    /// writer), a device is refused (it said "permission"), a directory too.
    func testNonRegularFilesAreRefusedWithoutBlocking() throws {
        let fifo = work.appendingPathComponent("pipe.png")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        for (path, expected) in [(fifo.path, "FIFO"), ("/dev/zero", "device"), (work.path, "directory")] {
            XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))) { error in
                guard case let ImageDecodingError.unreadable(at, reason) = error else { return XCTFail("\(path): \(error)") }
                XCTAssertEqual(at, path)
                XCTAssertTrue(reason.contains(expected), "\(path): \(reason)")
            }
        }
    }

    /// A 2 GiB file named .png is refused by its size before a byte is read; a
    /// 512 MiB one that is not an image is refused by its signature after 8 bytes
    /// (both sparse, so they cost no disk).
    func testLargeFilesAreRefusedBeforeTheyAreRead() throws {
        for (size, expected) in [(Int64(2) << 30, "over the limit"), (Int64(512) << 20, "")] {
            let file = work.appendingPathComponent("big-\(size).png")
            XCTAssertTrue(FileManager.default.createFile(atPath: file.path, contents: nil))
            let handle = try FileHandle(forWritingTo: file)
            try handle.truncate(atOffset: UInt64(size))
            try handle.close()
            let start = Date()
            XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: file)) { error in
                switch error {
                case let ImageDecodingError.unreadable(_, reason): XCTAssertTrue(!expected.isEmpty && reason.contains(expected), reason)
                case ImageDecodingError.unsupportedFormat: XCTAssertTrue(expected.isEmpty, "\(error)")
                default: XCTFail("\(error)")
                }
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 1, "refused without reading \(size) bytes")
        }
    }

    // MARK: Resizing only what a crop keeps

    /// The window of a resize equals the same crop of the whole resize, byte for
    /// byte, for every filter, both pass orders, crops inside, across and
    /// outside the resized image (zero padding).
    func testResizedCropEqualsCropOfWholeResize() throws {
        var generator = SplitMix64(seed: 13)
        for trial in 0..<80 {
            let w = Int.random(in: 1...60, using: &generator), h = Int.random(in: 1...60, using: &generator)
            let image = RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let ow = Int.random(in: 1...80, using: &generator), oh = Int.random(in: 1...80, using: &generator)
            let cw = Int.random(in: 1...40, using: &generator), ch = Int.random(in: 1...40, using: &generator)
            let left = Int.random(in: -10...(ow + 5), using: &generator), top = Int.random(in: -10...(oh + 5), using: &generator)
            let filter = [ResampleFilter.bicubic, .bilinear, .lanczos, .box, .hamming][trial % 5]
            let whole = ImagePreprocessing.crop(try image.resized(width: ow, height: oh, filter: filter),
                                                left: left, top: top, width: cw, height: ch)
            let window = try ImagePreprocessing.resizedCrop(image, width: ow, height: oh, filter: filter,
                                                            left: left, top: top, cropWidth: cw, cropHeight: ch)
            XCTAssertEqual(window, whole, "\(w)x\(h) → \(ow)x\(oh) \(filter), crop \(cw)x\(ch) at (\(left), \(top))")
        }
    }

    /// A resize whose coefficient table would pass the budget is done in strips
    /// that stitch to exactly the one-table result (Pillow's passes, here run
    /// with the whole table as the former code did).
    func testStripsStitchToTheWholeTableResult() throws {
        let height = 1_500_000
        let image = RGBImage(width: 1, height: height, pixels: (0..<(height * 3)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        let taps = ResampleCoefficients.taps(inSize: height, outSize: 40, filter: .bicubic)
        XCTAssertGreaterThan(40 * taps, ResampleCoefficients.tableBudget, "the case needs strips")
        let stripped = try image.resized(width: 3, height: 40)
        let vertical = ResampleCoefficients(inSize: height, in0: 0, in1: Float(height), outSize: 40, filter: .bicubic)
        let horizontal = ResampleCoefficients(inSize: 1, in0: 0, in1: 1, outSize: 3, filter: .bicubic)
        let reference = RGBImage.horizontalPass(RGBImage.verticalPass(image, coefficients: vertical), rows: 0..<40, coefficients: horizontal)
        XCTAssertEqual(stripped, reference)
    }

    /// A strip shrunk so far that one output pixel would need more than the tap
    /// limit is a typed error, not an allocation of the whole kernel.
    func testKernelWiderThanTheLimitIsATypedError() throws {
        let image = RGBImage(width: 1, height: 2_000_000)
        XCTAssertThrowsError(try image.resized(width: 1, height: 1)) { error in
            guard case ResampleError.kernelTooWide(2_000_000, 1, _) = error else { return XCTFail("\(error)") }
        }
    }

    /// An extreme aspect ratio costs the crop, not the resized image: a
    /// 1 × 4,000,000 strip through CLIP's 32-px preprocessing resizes to
    /// 32 × 128,000,000 (12 GB) but only its 32 × 32 centre is computed.
    func testExtremeAspectRatioPreprocessesThroughItsCrop() throws {
        let height = 4_000_000
        let image = RGBImage(width: 1, height: height, pixels: (0..<(height * 3)).map { UInt8(truncatingIfNeeded: $0 / 3_000_000) })
        let tensor = try ImagePreprocessing.openCLIP(image, size: 32)
        XCTAssertEqual(tensor.count, 3 * 32 * 32)
        let blip = try ImagePreprocessing.blip(image, size: 32)
        XCTAssertEqual(blip.count, 3 * 32 * 32)
    }

    // MARK: Config files

    /// Sets `key` of `file` in a scratch copy of `fixture` to `value` and asserts
    /// that `load` refuses the folder with ``CheckpointError/invalidValue(path:key:reason:)``
    /// naming that file and `expected` (default: `key`).
    func assertRefused(_ fixture: String, _ file: String, _ key: String, _ value: Any, expected: String? = nil,
                       load: (URL) throws -> Any, line: UInt = #line) throws {
        let scratch = try ScratchCheckpoint(fixture)
        defer { scratch.remove() }
        try scratch.setJSON(file, key, value)
        XCTAssertThrowsError(try load(scratch.directory), "\(file) \(key) = \(value)", line: line) { error in
            guard case let CheckpointError.invalidValue(path, at, _) = error else { return XCTFail("\(key): \(error)", line: line) }
            XCTAssertEqual(path, scratch.url(file).path, line: line)
            XCTAssertEqual(at, expected ?? key, line: line)
        }
    }

    /// Sizes in config.json out of range fail at load with the file and the key
    /// (they trapped on ranges and overflows, or allocated for 10⁹ layers).
    func testConfigSizesOutOfRangeNameFileAndKey() throws {
        let clip: [(String, Any)] = [
            ("text_config.num_hidden_layers", -1), ("text_config.num_hidden_layers", 1_000_000_000),
            ("vision_config.image_size", -64), ("vision_config.image_size", 16 << 33),
            ("text_config.max_position_embeddings", 0), ("vision_config.layer_norm_eps", -1e-5),
            ("text_config.vocab_size", 1 << 40), ("projection_dim", 0), ("vision_config.patch_size", 0),
        ]
        for (key, value) in clip {
            try assertRefused("interrogator/clip", "config.json", key, value) { try CLIPEncoder(directory: $0) }
        }
        let blip: [(String, Any)] = [("text_config.num_hidden_layers", -1), ("vision_config.image_size", -64),
                                     ("text_config.max_position_embeddings", 0), ("vision_config.num_hidden_layers", 1_000_000_000)]
        for (key, value) in blip {
            try assertRefused("blip/tiny-base", "config.json", key, value) { try BlipCaptioner(directory: $0) }
        }
    }

    /// preprocessor_config.json: sizes that cannot be, a zero `image_std`, a
    /// negative `crop_size`, and a BLIP size other than the vision model's fail at
    /// load naming the file and the key (they trapped, allocated 10⁵ × 10⁵ pixels,
    /// or divided by zero).
    func testPreprocessorValuesNameFileAndKey() throws {
        let blip: [(String, Any)] = [
            ("size", ["height": 0, "width": 0]), ("size", ["height": -5, "width": -5]),
            ("size", ["height": 100_000, "width": 100_000]), ("size", ["height": 1 << 32, "width": 1 << 32]),
            ("size", ["height": 64, "width": 64]), ("image_std", [0.5, 0, 0.5]), ("image_mean", [0.5]), ("resample", 0),
        ]
        for (key, value) in blip {
            try assertRefused("blip/tiny-base", "preprocessor_config.json", key, value) { try BlipCaptioner(directory: $0) }
        }
        for (key, value) in [("crop_size", ["height": -32, "width": -32]), ("image_std", [0.0, 0.0, 0.0])] as [(String, Any)] {
            try assertRefused("interrogator/clip", "preprocessor_config.json", key, value) { try CLIPEncoder(directory: $0) }
        }
    }

    /// `shortest_edge` is a legal Hugging Face size: BLIP then takes square images
    /// and refuses others per image with a typed error, before resizing (it
    /// trapped on the tensor's shape).
    func testShortestEdgeOnANonSquareImageIsATypedErrorPerImage() throws {
        let scratch = try ScratchCheckpoint("blip/tiny-base")
        defer { scratch.remove() }
        try scratch.setJSON("preprocessor_config.json", "size", ["shortest_edge": 32])
        let captioner = try BlipCaptioner(directory: scratch.directory)
        XCTAssertNoThrow(try captioner.caption(RGBImage(width: 40, height: 40), maxTokens: 3, progress: nil))
        XCTAssertThrowsError(try captioner.caption(RGBImage(width: 48, height: 40), maxTokens: 3, progress: nil)) { error in
            XCTAssertEqual(error as? ModelInputError, .imageShape(found: [3, 32, 38], expected: [3, 32, 32]))
        }
    }

    // MARK: Tokenizer files

    /// One id of 2·10⁹ in vocab.json sized a 32 GB table; ids now index nothing.
    func testCLIPVocabularyIdsDoNotSizeAnything() throws {
        let scratch = try ScratchCheckpoint("interrogator/clip")
        defer { scratch.remove() }
        try scratch.setJSON("vocab.json", "zebra</w>", 2_000_000_000)
        let tokenizer = try CLIPTokenizer(directory: scratch.directory)
        XCTAssertEqual(tokenizer.decode([2_000_000_000]), "zebra ")
        XCTAssertEqual(tokenizer.decode([1_999_999_999]), "", "unknown ids decode to nothing")
    }

    /// A tokenizer.json vocabulary id past its entries is refused, naming the file and key.
    func testBertVocabularyIdPastTheEntriesIsRefused() throws {
        let scratch = try ScratchCheckpoint("blip/tiny-base")
        defer { scratch.remove() }
        let json = #"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[PAD]": 1, "zebra": 2000000000}}}"#
        try Data(json.utf8).write(to: scratch.url("tokenizer.json"))
        XCTAssertThrowsError(try BertTokenizer(directory: scratch.directory)) { error in
            guard case let BertTokenizerError.invalidConfiguration(path, key, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, scratch.url("tokenizer.json").path)
            XCTAssertEqual(key, "model.vocab")
        }
    }

    /// A vocab.txt shorter than the model's vocabulary made captions of the ids
    /// it lacks silently empty; it is refused at load.
    func testCaptionerRefusesATokenizerSmallerThanTheModel() throws {
        let scratch = try ScratchCheckpoint("blip/tiny-base")
        defer { scratch.remove() }
        let lines = try String(contentsOf: scratch.url("vocab.txt"), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        try (lines.prefix(1000).joined(separator: "\n") + "\n").write(to: scratch.url("vocab.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BlipCaptioner(directory: scratch.directory)) { error in
            guard case let CheckpointError.invalidValue(path, key, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, scratch.url("config.json").path)
            XCTAssertEqual(key, "text_config.vocab_size")
        }
    }

    // MARK: Sharded checkpoints

    /// A checkpoint split into two shards with a `model.safetensors.index.json`
    /// loads the same tensors as the single file; an index naming a shard outside
    /// the folder is refused, naming the index and `weight_map`.
    func testShardedCheckpointLoadsAndItsIndexStaysInTheFolder() throws {
        let scratch = try ScratchCheckpoint("interrogator/clip")
        defer { scratch.remove() }
        let single = try Checkpoint(directory: scratch.directory).weights
        let keys = single.keys
        XCTAssertGreaterThan(keys.count, 2)
        var map: [String: String] = [:]
        for (part, names) in [keys.prefix(keys.count / 2), keys.dropFirst(keys.count / 2)].enumerated() {
            let file = "model-0000\(part + 1)-of-00002.safetensors"
            var tensors: [String: Tensor] = [:]
            for name in names {
                tensors[name] = try single.tensor(name)
                map[name] = file
            }
            try SafeTensorsWriter.write(tensors, to: scratch.url(file))
        }
        func writeIndex(_ map: [String: String]) throws {
            let data = try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": map])
            try data.write(to: scratch.url("model.safetensors.index.json"))
        }
        try FileManager.default.removeItem(at: scratch.url("model.safetensors"))
        try writeIndex(map)
        let sharded = try Checkpoint(directory: scratch.directory).weights
        XCTAssertEqual(sharded.keys, keys)
        for name in keys { XCTAssertEqual(try sharded.tensor(name).floats(), try single.tensor(name).floats(), name) }

        for outside in ["../model-00001-of-00002.safetensors", "/etc/passwd", "sub/model.safetensors", ".."] {
            var hostile = map
            hostile[keys[0]] = outside
            try writeIndex(hostile)
            XCTAssertThrowsError(try Checkpoint(directory: scratch.directory), outside) { error in
                guard case let CheckpointError.invalidValue(path, key, reason) = error else { return XCTFail("\(outside): \(error)") }
                XCTAssertEqual(path, scratch.url("model.safetensors.index.json").path)
                XCTAssertEqual(key, "weight_map")
                XCTAssertTrue(reason.contains(outside), reason)
            }
        }
    }

    // MARK: Non-finite outputs

    /// One NaN weight made every embedding NaN and prompts plausible nonsense; the
    /// encoder now fails with a typed error.
    func testNaNWeightFailsCLIPEmbeddingsWithATypedError() throws {
        let scratch = try ScratchCheckpoint("interrogator/clip")
        defer { scratch.remove() }
        try scratch.patchTensor("visual_projection.weight", element: 0, bytes: [0x00, 0x7E])
        try scratch.patchTensor("text_projection.weight", element: 0, bytes: [0x00, 0x7E])
        let encoder = try CLIPEncoder(directory: scratch.directory)
        XCTAssertThrowsError(try encoder.imageEmbedding([RGBImage(width: 32, height: 32)])) { error in
            XCTAssertEqual(error as? NonFiniteOutputError, NonFiniteOutputError(output: "CLIP image embedding"))
        }
        XCTAssertThrowsError(try encoder.textEmbeddings(texts: ["a photo"])) { error in
            XCTAssertTrue(error is NonFiniteOutputError, "\(error)")
        }
        XCTAssertThrowsError(try encoder.textEmbeddings([encoder.tokenize("a photo, of"), encoder.tokenize("a photo, by")],
                                                        sharingPrefix: Array(encoder.tokenize("a photo").dropLast()))) { error in
            XCTAssertTrue(error is NonFiniteOutputError, "\(error)")
        }
    }

    /// A NaN in BLIP's decoder made captions of token 0; generation now fails.
    func testNaNWeightFailsTheCaptionWithATypedError() throws {
        let scratch = try ScratchCheckpoint("blip/tiny-base")
        defer { scratch.remove() }
        try scratch.patchTensor("text_decoder.cls.predictions.bias", element: 7, bytes: [0, 0, 0xC0, 0x7F])
        let captioner = try BlipCaptioner(directory: scratch.directory)
        XCTAssertThrowsError(try captioner.caption(RGBImage(width: 32, height: 32), maxTokens: 4, progress: nil)) { error in
            XCTAssertEqual(error as? NonFiniteOutputError, NonFiniteOutputError(output: "BLIP caption logits"))
        }
    }
}
