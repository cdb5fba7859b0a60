import Foundation
import TestSupport
import XCTest
@testable import NeuralModels

/// Parity of `CLIPTokenizer` with open_clip's `SimpleTokenizer`, against the goldens written by
/// Weights/fixtures/make_clip_tokenizer_fixtures.py.
final class CLIPTokenizerTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/clip-tokenizer")

    /// One tokenizer for the whole suite (loading parses ~1.5 MB of JSON and merges).
    static let shared: Result<CLIPTokenizer, CLIPTokenizerError> = Result { () throws(CLIPTokenizerError) in
        try CLIPTokenizer(directory: fixtures)
    }

    func tokenizer() throws -> CLIPTokenizer { try Self.shared.get() }

    // MARK: Fixture readers

    struct HardCase: Decodable {
        let text: String
        let cleaned: String
        let ids: [Int32]
        let full_ids: [Int32]
        let needs_fix_encoding: Bool
        let cleaned_without_fix_encoding: String
        let ids_without_fix_encoding: [Int32]
    }

    // MARK: Padding

    func testPaddedRowsMatchOpenCLIPTokenize() throws {
        let tokenizer = try tokenizer()
        let texts = ["a photo of a cat", "", "by Greg Rutkowski", String(repeating: "dog ", count: 100)]
        let rows = tokenizer.encode(texts)
        let flat = tokenizer.encodeFlattened(texts)
        XCTAssertEqual(flat, rows.flatMap { $0 })
        for (row, text) in zip(rows, texts) {
            XCTAssertEqual(row.count, 77)
            let unpadded = tokenizer.encodeUnpadded(text)
            XCTAssertEqual(Array(row[..<unpadded.count]), unpadded)
            XCTAssertTrue(row[unpadded.count...].allSatisfy { $0 == 0 })
            XCTAssertEqual(row, tokenizer.encode(text))
        }
        XCTAssertEqual(tokenizer.encodeUnpadded(""), [tokenizer.startTokenID, tokenizer.endTokenID])
    }

    // MARK: Hand-written hard cases

    func testHardCasesMatchOpenCLIP() throws {
        let tokenizer = try tokenizer()
        let cases = try JSONDecoder().decode([HardCase].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("hard_cases.json")))
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        for hardCase in cases {
            let name = escapedScalars(String(hardCase.text.prefix(80)))
            // Mojibake repair (ftfy's fix_encoding) is not ported: those cases must equal
            // ftfy without fix_encoding, and are the only ones allowed to differ from open_clip.
            let cleaned = hardCase.needs_fix_encoding ? hardCase.cleaned_without_fix_encoding : hardCase.cleaned
            let ids = hardCase.needs_fix_encoding ? hardCase.ids_without_fix_encoding : hardCase.ids
            XCTAssertEqual(Array(tokenizer.clean(hardCase.text).unicodeScalars), Array(cleaned.unicodeScalars),
                           "cleaned text of \(name): \(escapedScalars(tokenizer.clean(hardCase.text))) vs \(escapedScalars(cleaned))")
            XCTAssertEqual(tokenizer.encodeUnpadded(hardCase.text), ids, "ids of \(name)")
            if !hardCase.needs_fix_encoding {
                XCTAssertEqual(tokenizer.encodeUnpadded(hardCase.text, truncating: false), hardCase.full_ids, "untruncated ids of \(name)")
            } else {
                XCTAssertNotEqual(hardCase.ids, hardCase.ids_without_fix_encoding)
            }
        }
    }

    // MARK: Truncation

    func testTruncationForcesEndTokenLast() throws {
        let tokenizer = try tokenizer()
        let fits = Array(repeating: "word", count: 75).joined(separator: " ")
        let over = Array(repeating: "word", count: 76).joined(separator: " ")
        XCTAssertEqual(tokenizer.encodeUnpadded(fits, truncating: false).count, 77)
        XCTAssertEqual(tokenizer.encodeUnpadded(fits), tokenizer.encodeUnpadded(fits, truncating: false))
        let full = tokenizer.encodeUnpadded(over, truncating: false)
        XCTAssertEqual(full.count, 78)
        let truncated = tokenizer.encodeUnpadded(over)
        XCTAssertEqual(truncated.count, 77)
        XCTAssertEqual(Array(truncated[..<76]), Array(full[..<76]))
        XCTAssertEqual(truncated.last, tokenizer.endTokenID)
        XCTAssertNotEqual(full[76], tokenizer.endTokenID)

        let short = tokenizer.withContextLength(5)
        XCTAssertEqual(short.contextLength, 5)
        let row = short.encode("one two three four five six")
        XCTAssertEqual(row.count, 5)
        XCTAssertEqual(row.first, tokenizer.startTokenID)
        XCTAssertEqual(row.last, tokenizer.endTokenID)
        XCTAssertEqual(Array(row[1..<4]), Array(tokenizer.encodeWithoutSpecialTokens("one two three")))
        XCTAssertEqual(tokenizer.withContextLength(1).encode("anything"), [tokenizer.endTokenID])
    }

    // MARK: Vocabulary facts come from the files

    func testSpecialTokensComeFromTheVocabulary() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual(tokenizer.startTokenID, tokenizer.id(forToken: "<|startoftext|>"))
        XCTAssertEqual(tokenizer.endTokenID, tokenizer.id(forToken: "<|endoftext|>"))
        XCTAssertEqual(tokenizer.startTokenID, 49406)
        XCTAssertEqual(tokenizer.endTokenID, 49407)
        XCTAssertEqual(tokenizer.vocabularySize, 49408)
        XCTAssertEqual(tokenizer.contextLength, 77)
        // open_clip's in-text spellings become the special ids.
        XCTAssertEqual(tokenizer.encodeWithoutSpecialTokens("<start_of_text>"), [49406])
        XCTAssertEqual(tokenizer.encodeWithoutSpecialTokens("<END_OF_TEXT>"), [49407])
    }

    func testDecodeJoinsBytesAndWordEnds() throws {
        let tokenizer = try tokenizer()
        let text = "a photo of a café, 東京 😀 it's"
        XCTAssertEqual(tokenizer.decode(tokenizer.encodeWithoutSpecialTokens(text)), "a photo of a café , 東京 😀 it 's ")
    }

    // MARK: Errors

    func testMissingFilesAreNamed() throws {
        let missing = Self.fixtures.appendingPathComponent("no-such-dir")
        XCTAssertThrowsError(try CLIPTokenizer(directory: missing)) { error in
            XCTAssertEqual(error as? CLIPTokenizerError, .missingFile(missing.appendingPathComponent("vocab.json")))
        }
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: Self.fixtures.appendingPathComponent("vocab.json"),
                                               mergesURL: missing.appendingPathComponent("merges.txt"))) { error in
            XCTAssertEqual(error as? CLIPTokenizerError, .missingFile(missing.appendingPathComponent("merges.txt")))
            XCTAssertTrue(String(describing: error).contains("merges.txt"))
        }
    }

    func testCorruptFilesAreNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clip-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let vocabulary = directory.appendingPathComponent("vocab.json")
        let merges = directory.appendingPathComponent("merges.txt")
        let realVocabulary = Self.fixtures.appendingPathComponent("vocab.json")

        try Data("[1, 2, 3]".utf8).write(to: vocabulary)
        try Data("#version: 0.2\ni n\n".utf8).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: vocabulary, mergesURL: merges)) { error in
            guard case .invalidVocabulary(let url, _)? = error as? CLIPTokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(url, vocabulary)
        }

        try Data(#"{"a": 0, "b": 1}"#.utf8).write(to: vocabulary)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: vocabulary, mergesURL: merges)) { error in
            XCTAssertEqual(error as? CLIPTokenizerError, .invalidVocabulary(vocabulary, reason: "missing token \"<|startoftext|>\""))
        }

        try Data("#version: 0.2\ni n\nt h e x\n".utf8).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: realVocabulary, mergesURL: merges)) { error in
            guard case .invalidMerges(let url, let line, _)? = error as? CLIPTokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(url, merges)
            XCTAssertEqual(line, 3)
        }

        try Data("#version: 0.2\ni n\nqqqqq zzzzz\n".utf8).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: realVocabulary, mergesURL: merges)) { error in
            guard case .invalidMerges(_, let line, _)? = error as? CLIPTokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 3)
        }

        try Data([0xFF, 0xFE, 0x00]).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: realVocabulary, mergesURL: merges)) { error in
            guard case .unreadableFile(let url, _)? = error as? CLIPTokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(url, merges)
        }
    }

    // MARK: Unicode tables against Python / regex / ftfy

    struct UnicodeClasses: Decodable {
        let runs: [[Int]]
        let lower: [String: [UInt32]]
        let sigma: [[String]]
        let ftfy_width: [String: [UInt32]]
        let ftfy_ligatures: [String: [UInt32]]
        let ftfy_control: [UInt32]
        let nfc_pairs: [[[UInt32]]]
        let nfc_fuzz: [[[UInt32]]]
    }

    func testScalarClassesMatchTheReference() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("unicode_classes.json"))
        let reference = try JSONDecoder().decode(UnicodeClasses.self, from: data)
        var expected = [UInt8](repeating: 0, count: 0x110000)
        for (index, run) in reference.runs.enumerated() {
            let end = index + 1 < reference.runs.count ? reference.runs[index + 1][0] : 0x110000
            for value in run[0]..<end { expected[value] = UInt8(run[1]) }
        }
        var classMismatches: [String] = []
        var spaceMismatches: [String] = []
        var lowerMismatches: [String] = []
        for value in UInt32(0)..<0x110000 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let want = expected[Int(value)]
            let got = CLIPPreTokenizer.classify(scalar).rawValue
            if got != want & 7 { classMismatches.append(String(value, radix: 16) + ": \(got) vs \(want & 7)") }
            if CLIPTextCleaner.isPythonSpace(scalar) != (want & 8 != 0) { spaceMismatches.append(String(value, radix: 16)) }
            var lowered: [Unicode.Scalar] = []
            CLIPTextCleaner.appendLowercase(of: scalar, to: &lowered)
            if value < 0x80 || value == 0x3A3 { lowered = CLIPTextCleaner.pythonLower([scalar]) }
            let pythonLowered = reference.lower[String(value)] ?? [value]
            if lowered.map(\.value) != pythonLowered { lowerMismatches.append(String(value, radix: 16)) }
        }
        XCTAssertEqual(classMismatches.count, 0, "split-pattern classes differ: \(classMismatches.prefix(20))")
        XCTAssertEqual(spaceMismatches.count, 0, "str.isspace differs: \(spaceMismatches.prefix(20))")
        XCTAssertEqual(lowerMismatches.count, 0, "str.lower differs: \(lowerMismatches.prefix(20))")
        for pair in reference.sigma {
            XCTAssertEqual(CLIPTextCleaner.pythonLower(Array(pair[0].unicodeScalars)), Array(pair[1].unicodeScalars), pair[0])
        }
    }

    func testFTFYTablesMatchFTFY() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("unicode_classes.json"))
        let reference = try JSONDecoder().decode(UnicodeClasses.self, from: data)
        let width = CLIPTextCleaner.widthMap.mapValues { $0.map(\.value) }
        XCTAssertEqual(width, Dictionary(uniqueKeysWithValues: reference.ftfy_width.map { (UInt32($0.key)!, $0.value) }))
        let ligatures = CLIPTextCleaner.latinLigatures.mapValues { $0.map(\.value) }
        XCTAssertEqual(ligatures, Dictionary(uniqueKeysWithValues: reference.ftfy_ligatures.map { (UInt32($0.key)!, $0.value) }))
        let removed = (UInt32(0)..<0x110000).filter { Unicode.Scalar($0).map(CLIPTextCleaner.isRemovedControl) ?? false }
        XCTAssertEqual(removed, reference.ftfy_control)
        XCTAssertEqual(CLIPTextCleaner.html5Entities.count, 2231)
    }

    func testGeneratedTablesLoad() {
        let entities = CLIPTokenizerTables.entities
        XCTAssertEqual(entities.html5.count, 2231)
        XCTAssertEqual(entities.ftfy.count, 2125 + 1376)  // HTML5 names with ";", ftfy's upper-case ones
        XCTAssertEqual(entities.html5["AElig"], ["\u{C6}"])
        XCTAssertEqual(entities.html5["acE;"], ["\u{223E}", "\u{333}"])
        XCTAssertEqual(entities.html5["eacute;"], ["\u{E9}"])
        XCTAssertNil(entities.html5["EACUTE;"])
        XCTAssertEqual(entities.ftfy["EACUTE;"], ["\u{C9}"])
        XCTAssertEqual(entities.ftfy["eacute;"], ["\u{E9}"])
        XCTAssertEqual(entities.ftfy["AMP;"], ["&"])
        XCTAssertNil(entities.ftfy["AElig"])
        XCTAssertEqual(entities.ftfy["LT;"], ["<"])  // an HTML5 name already, not derived from "lt;"

        let newer = CLIPTokenizerTables.newerLettersAndNumbers
        XCTAssertEqual(newer.count, 91)
        XCTAssertTrue(newer.first! == (0x558, 0x558, 1) && newer.last! == (0x3D000, 0x3FC3F, 1))
        XCTAssertTrue(newer.contains { $0 == (0x10D40, 0x10D49, 2) })
        XCTAssertTrue(zip(newer, newer.dropFirst()).allSatisfy { $0.0 <= $0.1 && $0.1 < $1.0 })
        let composing = CLIPTokenizerTables.composingSupplementaryScalars
        XCTAssertEqual(composing.count, 132)
        XCTAssertTrue(composing.first! == (0x11099, 0x1109C) && composing.last! == (0x2F800, 0x2FA1D))
        XCTAssertTrue(zip(composing, composing.dropFirst()).allSatisfy { $0.0 <= $0.1 && $0.1 < $1.0 })
    }

    func testNFCMatchesPythonOnCompositionPairsAndFuzz() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("unicode_classes.json"))
        let reference = try JSONDecoder().decode(UnicodeClasses.self, from: data)
        XCTAssertGreaterThan(reference.nfc_pairs.count, 4000)
        XCTAssertEqual(reference.nfc_fuzz.count, 2000)
        var mismatches: [String] = []
        for pair in reference.nfc_pairs + reference.nfc_fuzz {
            let input = pair[0].map { Unicode.Scalar($0)! }
            let output = CLIPTextCleaner.nfc(input).map(\.value)
            if output != pair[1] {
                mismatches.append("\(pair[0].map { String($0, radix: 16) }) -> \(output.map { String($0, radix: 16) }), Python \(pair[1].map { String($0, radix: 16) })")
            }
        }
        XCTAssertEqual(mismatches.count, 0, "NFC differs from Python: \(mismatches.prefix(10))")
    }

    // MARK: Concurrency

    func testConcurrentEncodingIsConsistent() throws {
        let tokenizer = try tokenizer().withContextLength(77)
        let texts = (0..<400).map { "label \($0) by artist \($0 % 17) – ﬁne “quoted” 東京\($0 % 5)" }
        let expected = texts.map { tokenizer.encode($0) }
        let results = LockedResults<[Int32]>(Array(repeating: [], count: texts.count))
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in stride(from: worker, to: texts.count, by: 8) {
                let row = tokenizer.encode(texts[index])
                results.set(index, row)
            }
        }
        XCTAssertEqual(results.value, expected)
    }
}

/// A lock-protected array for collecting results in the concurrency test.
final class LockedResults<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element]
    init(_ initial: [Element]) { storage = initial }
    func set(_ index: Int, _ element: Element) {
        lock.lock()
        storage[index] = element
        lock.unlock()
    }
    var value: [Element] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
