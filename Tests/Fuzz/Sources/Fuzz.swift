// libFuzzer targets for every file the library reads from a user or a model
// folder. One binary; FUZZ_TARGET picks the target (png, jpeg, safetensors,
// config, tokenizer, labelcache, resume). Built and run by Tests/Fuzz/fuzz.sh
// (with -sanitize=fuzzer,address); see Docs/reliability.md.
//
// A target passes when every input ends in a result or a thrown error: a trap,
// a sanitizer report, a leak, a hang (-timeout) or an allocation beyond
// libFuzzer's limit (-rss_limit_mb / -malloc_limit_mb) is a finding.

import ClipInterrogator
import Foundation
import NeuralCore
import NeuralModels

/// The targets.
enum Target: String, CaseIterable {
    /// `ImageDecoder` on PNG bytes (CRCs fixed after each mutation), then both
    /// preprocessing pipelines on small results.
    case png
    /// `ImageDecoder` on JPEG bytes, then preprocessing.
    case jpeg
    /// `SafeTensorsFile` on a file of these bytes, every tensor read.
    case safetensors
    /// `config.json` (CLIP, BLIP) and `preprocessor_config.json` decoding.
    case config
    /// The tokenizer files: first byte picks CLIP vocab.json, CLIP merges.txt,
    /// BERT vocab.txt, tokenizer.json or tokenizer_config.json; the rest is the file.
    case tokenizer
    /// `LabelEmbeddingCache.load` on a cache file for the reference's trending labels.
    case labelcache
    /// `ResultWriter` resuming a file: first byte picks json, jsonl or csv.
    case resume
}

let target: Target = {
    guard let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"], let target = Target(rawValue: name) else {
        let names = Target.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("set FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    return target
}()

/// A private folder for the files the loaders read.
let scratch: URL = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(target.rawValue)-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 && data != nil ? Data(bytes: data!, count: size) : Data()
    switch target {
    case .png, .jpeg: image(bytes)
    case .safetensors: safetensors(bytes)
    case .config: config(bytes)
    case .tokenizer: tokenizer(bytes)
    case .labelcache: labelCache(bytes)
    case .resume: resume(bytes)
    }
    return 0
}

/// libFuzzer's driver (its `main` without being `main`).
@_silgen_name("LLVMFuzzerRunDriver")
func libFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// The program's entry point: SwiftPM links an executable target's `main` to
/// `<module>_main`, so the harness provides it and hands over to libFuzzer.
@_cdecl("interrogate_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    // The globals are made before the first input: made during one, LeakSanitizer
    // takes what they hold for leaks of that input (Swift stores some pointers
    // with enum tag bits it cannot follow).
    _ = (target, scratch, clipFiles.vocabulary.count, ReferenceLabels.trendings.count)
    var count = argc, arguments = argv
    return libFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}

/// libFuzzer's own mutator, declared for the custom one.
@_silgen_name("LLVMFuzzerMutate")
func libFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int) -> Int

/// Mutates as libFuzzer does and, for PNG, recomputes every chunk's CRC, so
/// mutations reach past the chunk checks into libpng and the conversions.
@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzMutate(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    let newSize = libFuzzerMutate(data, size, maxSize)
    if target == .png, let data { fixPNGChecksums(data, newSize) }
    return newSize
}

/// Rewrites the CRC of every complete chunk after the 8-byte signature.
func fixPNGChecksums(_ data: UnsafeMutablePointer<UInt8>, _ size: Int) {
    var position = 8
    while position + 12 <= size {
        let length = Int(data[position]) << 24 | Int(data[position + 1]) << 16 | Int(data[position + 2]) << 8 | Int(data[position + 3])
        guard length <= size - position - 12 else { return }
        var crc: UInt32 = 0xFFFF_FFFF
        for i in (position + 4)..<(position + 8 + length) {
            crc ^= UInt32(data[i])
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        let at = position + 8 + length
        for k in 0..<4 { data[at + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
        position = at + 4
    }
}

// MARK: Targets

func image(_ bytes: Data) {
    guard let image = try? ImageDecoder.decode(data: bytes), image.width * image.height <= 1 << 20 else { return }
    _ = try? ImagePreprocessing.openCLIP(image, size: 16)
    _ = try? ImagePreprocessing.blip(image, size: 12)
}

func write(_ bytes: Data, _ name: String) -> URL {
    let url = scratch.appendingPathComponent(name)
    try? bytes.write(to: url)
    return url
}

func safetensors(_ bytes: Data) {
    guard let file = try? SafeTensorsFile(contentsOf: write(bytes, "model.safetensors")) else { return }
    for name in file.names {
        guard let tensor = try? file.tensor(name) else { continue }
        _ = tensor.isFinite
        if tensor.dtype.isFloatStorage && tensor.count <= 1 << 16 { _ = tensor.floats() }
    }
}

func config(_ bytes: Data) {
    func decode<T: Decodable>(_ type: T.Type) -> T? {
        do {
            return try JSONDecoder().decode(type, from: bytes)
        } catch let error as DecodingError {
            _ = Checkpoint.describe(error, path: "config.json").description
        } catch {}
        return nil
    }
    _ = decode(CLIPConfiguration.self)
    _ = decode(BlipConfiguration.self)
    guard let preprocessor = decode(ImagePreprocessingConfig.self) else { return }
    let image = RGBImage(width: 7, height: 5, pixels: (0..<105).map { UInt8($0) })
    guard let size = try? ImagePreprocessing.huggingFaceOutputSize(width: 7, height: 5, config: preprocessor),
          size.width * size.height <= 1 << 16 else { return }
    _ = try? ImagePreprocessing.huggingFace(image, config: preprocessor)
}

/// A minimal CLIP vocabulary (the 512 byte-level tokens, two merges, the
/// special tokens) and its merges, for the target that fuzzes the other file.
let clipFiles: (vocabulary: [UInt8], merges: [UInt8]) = {
    var characters: [String] = []
    var next: UInt32 = 0x100
    for byte in 0..<256 {
        switch byte {
        case 0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF: characters.append(String(Unicode.Scalar(UInt32(byte))!))
        default:
            characters.append(String(Unicode.Scalar(next)!))
            next += 1
        }
    }
    var vocabulary: [String: Int] = [:]
    for character in characters { vocabulary[character] = vocabulary.count }
    for character in characters { vocabulary[character + "</w>"] = vocabulary.count }
    for token in ["th", "the</w>", "<|startoftext|>", "<|endoftext|>"] { vocabulary[token] = vocabulary.count }
    // [UInt8], not Data: LeakSanitizer cannot follow Data's tagged storage from a global.
    let json = (try? JSONSerialization.data(withJSONObject: vocabulary, options: [.sortedKeys])) ?? Data()
    return (Array(json), Array("#version: 0.2\nt h\nth e</w>\n".utf8))
}()

func tokenizer(_ bytes: Data) {
    guard let selector = bytes.first else { return }
    let file = bytes.dropFirst()
    let text = "The <start_of_text> quick brown fox's 12 naïve ﬁsh — 東京 &amp; emoji 🐟"
    switch selector % 5 {
    case 0, 1:
        let vocabulary = write(selector % 5 == 0 ? Data(file) : Data(clipFiles.vocabulary), "vocab.json")
        let merges = write(selector % 5 == 1 ? Data(file) : Data(clipFiles.merges), "merges.txt")
        guard let tokenizer = try? CLIPTokenizer(vocabularyURL: vocabulary, mergesURL: merges) else { return }
        _ = tokenizer.decode(tokenizer.encode(text))
    default:
        let folder = scratch.appendingPathComponent("bert")
        try? FileManager.default.removeItem(at: folder)
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let name = ["vocab.txt", "tokenizer.json", "tokenizer_config.json"][Int(selector % 5) - 2]
        if name != "vocab.txt" { try? Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nquick\n##s\n".utf8).write(to: folder.appendingPathComponent("vocab.txt")) }
        try? Data(file).write(to: folder.appendingPathComponent(name))
        guard let tokenizer = try? BertTokenizer(directory: folder) else { return }
        let ids = tokenizer.encode(text)
        _ = tokenizer.decode(ids, skipSpecialTokens: true)
    }
}

func labelCache(_ bytes: Data) {
    _ = write(bytes, "tiny_random_trendings.safetensors")
    let labels = ReferenceLabels.trendings
    guard let embeddings = LabelEmbeddingCache(directory: scratch, modelName: "tiny/random").load(table: "trendings", labels: labels),
          embeddings.shape[1] <= 4096 else { return }
    let table = LabelTable(name: "trendings", labels: labels, embeddings: embeddings)
    let image = [Float](repeating: 1 / Float(table.dimension).squareRoot(), count: table.dimension)
    _ = table.rank(image, topCount: 5, method: .chunked(chunkSize: 16))
}

func resume(_ bytes: Data) {
    guard let selector = bytes.first else { return }
    let format = [OutputFormat.json, .jsonl, .csv][Int(selector % 3)]
    let url = write(Data(bytes.dropFirst()), "out.\(format.rawValue)")
    guard let writer = try? ResultWriter(format: format, url: url, resume: true, singleImage: false) else { return }
    _ = writer.completedImages
    let record = #"{"image": "new.png", "result": {"mode": "fast", "prompt": "a, \"b\"\nc"}}"#
    if let record = try? JSONDecoder().decode(BatchRecord.self, from: Data(record.utf8)) { try? writer.write(record) }
    try? writer.close()
}
