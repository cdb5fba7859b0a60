// Parity of `BertTokenizer` with transformers 5.24's BertTokenizer as BLIP loads it.
// Goldens: Tests/Fixtures/bert-tokenizer/golden.json, written by
// Weights/fixtures/make_bert_tokenizer_fixtures.py.

import Foundation
import TestSupport
import XCTest

@testable import NeuralModels

final class BertTokenizerTests: XCTestCase {

    // MARK: Fixtures

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/bert-tokenizer")
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    nonisolated(unsafe) private static var cachedGolden: [String: Any]?

    private func golden() throws -> [String: Any] {
        if let g = Self.cachedGolden { return g }
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("golden.json"))
        let g = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        Self.cachedGolden = g
        return g
    }

    private func blip() throws -> BertTokenizer {
        try BertTokenizer(directory: Self.fixtures)
    }

    private func ids(_ s: Any?) -> [Int] {
        guard let s = s as? String, !s.isEmpty else { return [] }
        return s.split(separator: " ").map { Int($0)! }
    }

    private func describe(_ text: String) -> String {
        text.unicodeScalars.map { $0.value < 0x20 || $0.value > 0x7E ? "\\u{\(String($0.value, radix: 16, uppercase: true))}" : String($0) }
            .joined()
    }

    private func hex(_ v: UInt32) -> String {
        let h = String(v, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - h.count)) + h
    }

    /// Copies a variant's files (plus ../vocab.txt unless it ships a tokenizer.json) to a temp dir.
    private func variantDirectory(_ name: String) throws -> URL {
        let fm = FileManager.default
        let source = Self.fixtures.appendingPathComponent("variants/\(name)")
        let dir = fm.temporaryDirectory.appendingPathComponent("bert-tokenizer-\(name)-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let files = try fm.contentsOfDirectory(atPath: source.path)
        for f in files {
            try fm.copyItem(at: source.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        if !files.contains("tokenizer.json") {
            try fm.copyItem(at: Self.fixtures.appendingPathComponent("vocab.txt"), to: dir.appendingPathComponent("vocab.txt"))
        }
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    // MARK: Configuration

    private func checkSpecials(_ tok: BertTokenizer, _ g: [String: Any], _ label: String) throws {
        let special = try XCTUnwrap(g["specialIds"] as? [String: Any])
        for role in BertTokenizer.SpecialTokenRole.allCases {
            let expected = special[role.rawValue] as? Int
            XCTAssertEqual(tok.specialTokenId(role), expected, "\(label): \(role) id")
        }
        XCTAssertEqual(tok.bosTokenId, special["bos"] as? Int, label)
        XCTAssertEqual(tok.clsTokenId, special["cls"] as? Int, label)
        XCTAssertEqual(tok.sepTokenId, special["sep"] as? Int, label)
        XCTAssertEqual(tok.padTokenId, special["pad"] as? Int, label)
        XCTAssertEqual(tok.unkTokenId, special["unk"] as? Int, label)
        XCTAssertEqual(tok.vocabularySize, g["vocabSize"] as? Int, "\(label): len(tokenizer)")
        XCTAssertEqual(tok.configuration.cleanUpTokenizationSpaces, g["cleanUpTokenizationSpaces"] as? Bool, label)
        let added = try XCTUnwrap(g["addedTokens"] as? [[Any]])
        XCTAssertEqual(tok.addedTokens.count, added.count, "\(label): added token count")
        for entry in added {
            let id = entry[0] as! Int
            let token = tok.addedTokens[id]
            XCTAssertNotNil(token, "\(label): added token \(id)")
            XCTAssertEqual(tok.token(forId: id), entry[1] as? String, "\(label): id_to_token(\(id))")
            XCTAssertEqual(token?.special, entry[2] as? Bool, "\(label): special flag of \(id)")
            XCTAssertEqual(token?.normalized, entry[3] as? Bool, "\(label): normalized flag of \(id)")
            XCTAssertEqual(token?.content, entry[4] as? String, "\(label): content of \(id)")
        }
    }

    func testBlipConfiguration() throws {
        let tok = try blip()
        try checkSpecials(tok, try golden(), "blip")
        XCTAssertEqual(tok.vocabulary.count, 30522)
        XCTAssertEqual(tok.bosTokenId, 30522)
        XCTAssertEqual(tok.sepTokenId, 102)
        XCTAssertEqual(tok.padTokenId, 0)
    }

    // MARK: Encoding

    /// Python `open(f, encoding='utf-8').readlines()` then `.strip()` on each line.
    private func pythonLines(_ data: Data) -> [String] {
        let text = String(decoding: data, as: UTF8.self)
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        var sawAny = false
        while let c = pending ?? iterator.next() {
            pending = nil
            sawAny = true
            if c == "\n" || c == "\r" {
                if c == "\r", let next = iterator.next(), next != "\n" { pending = next }
                lines.append(String(current))
                current = String.UnicodeScalarView()
                sawAny = false
            } else {
                current.append(c)
            }
        }
        if sawAny { lines.append(String(current)) }
        func isPythonSpace(_ v: UInt32) -> Bool {
            switch v {
            case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
                return true
            default:
                return false
            }
        }
        return lines.map { line in
            var scalars = Array(line.unicodeScalars)
            while let f = scalars.first, isPythonSpace(f.value) { scalars.removeFirst() }
            while let l = scalars.last, isPythonSpace(l.value) { scalars.removeLast() }
            var s = ""
            s.unicodeScalars.append(contentsOf: scalars)
            return s
        }
    }

    private func fnv1a64(_ data: Data) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in data {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The label lists as vendored (byte-identical) in the ClipInterrogator module.
    private func labelListDirectory() -> URL {
        Self.repositoryRoot.appendingPathComponent("Sources/ClipInterrogator/Resources/data")
    }

    func testLabelListsMatchReferenceIds() throws {
        let g = try golden()
        let lists = try XCTUnwrap(g["lists"] as? [String: Any])
        let alphabet = Array(try XCTUnwrap((g["meta"] as? [String: Any])?["idEncoding"] as? String).utf8)
        var value = [Int](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { value[Int(c)] = i }
        let dir = labelListDirectory()
        let tok = try blip()
        var total = 0
        for (name, entry) in lists.sorted(by: { $0.key < $1.key }) {
            let entry = try XCTUnwrap(entry as? [String: Any])
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            XCTAssertEqual(data.count, entry["bytes"] as? Int, "\(name): not the file the goldens were made from")
            XCTAssertEqual(fnv1a64(data), entry["fnv1a64"] as? String, "\(name): not the file the goldens were made from")
            let lines = pythonLines(data)
            XCTAssertEqual(lines.count, entry["lines"] as? Int, "\(name): line count")
            let groups = (entry["ids"] as? String ?? "").split(separator: " ", omittingEmptySubsequences: false)
            XCTAssertEqual(groups.count, lines.count, "\(name): golden line count")
            var mismatches = 0
            for (i, (line, group)) in zip(lines, groups).enumerated() {
                let bytes = Array(group.utf8)
                var expected = [tok.clsTokenId]
                var k = 0
                while k + 2 < bytes.count {
                    expected.append(value[Int(bytes[k])] << 12 | value[Int(bytes[k + 1])] << 6 | value[Int(bytes[k + 2])])
                    k += 3
                }
                expected.append(tok.sepTokenId)
                let got = tok.encode(line)
                if got != expected {
                    mismatches += 1
                    if mismatches <= 10 {
                        XCTFail("\(name):\(i + 1) '\(describe(line))'\n  expected \(expected)\n  got      \(got) \(tok.tokenize(line))")
                    }
                }
                total += 1
            }
            XCTAssertEqual(mismatches, 0, "\(name): \(mismatches) of \(lines.count) lines differ")
        }
        XCTAssertEqual(total, 106_571)
    }

    func testHardCasesMatchReferenceIds() throws {
        let tok = try blip()
        let cases = try XCTUnwrap(try golden()["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var failures = 0
        for c in cases {
            let text = try XCTUnwrap(c["text"] as? String)
            let got = tok.encode(text)
            let gotPlain = tok.encode(text, addSpecialTokens: false)
            let tokens = tok.encode(text).map { tok.token(forId: $0) ?? "?" }
            if got != ids(c["ids"]) || gotPlain != ids(c["noSpecial"]) || tokens != (c["tokens"] as? [String] ?? []) {
                failures += 1
                if failures <= 10 {
                    XCTFail("'\(describe(text))'\n  expected \(ids(c["ids"])) \(c["tokens"] ?? "")\n  got      \(got) \(tokens)")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) cases differ")
    }

    func testKnownIds() throws {
        let tok = try blip()
        // transformers' convert_blip_original_pytorch_to_hf.py: tokenizer(["a picture of"]).
        XCTAssertEqual(tok.encode("a picture of"), [101, 1037, 3861, 1997, 102])
        XCTAssertEqual(try tok.captionPrefix(prompt: "a picture of"), [30522, 1037, 3861, 1997])
        XCTAssertEqual(try tok.captionPrefix(prompt: nil), [30522])
        XCTAssertEqual(try tok.captionPrefix(prompt: "a picture of", bosTokenId: 7), [7, 1037, 3861, 1997])
        XCTAssertEqual(tok.tokenize("Unaffable, isn't it?"), ["una", "##ffa", "##ble", ",", "isn", "'", "t", "it", "?"])
        XCTAssertEqual(tok.decode([30522, 1037, 2450, 3564, 2006, 1996, 3509, 2007, 2014, 3899, 102]),
                       "a woman sitting on the beach with her dog")
    }

    func testCaptionPrompts() throws {
        let tok = try blip()
        for p in try XCTUnwrap(try golden()["captionPrompts"] as? [[String: Any]]) {
            let text = try XCTUnwrap(p["text"] as? String)
            XCTAssertEqual(try tok.captionPrefix(prompt: text), ids(p["ids"]), "prompt '\(text)'")
        }
    }

    // MARK: Decoding

    private func checkDecode(_ tok: BertTokenizer, _ cases: [[String: Any]], _ label: String) {
        var failures = 0
        for c in cases {
            let seq = ids(c["ids"])
            let skip = tok.decode(seq, skipSpecialTokens: true)
            let skipClean = tok.decode(seq, skipSpecialTokens: true, cleanUpTokenizationSpaces: true)
            let keep = tok.decode(seq, skipSpecialTokens: false)
            for (got, key) in [(skip, "skip"), (skipClean, "skipClean"), (keep, "keep")] where got != c[key] as? String {
                failures += 1
                if failures <= 10 {
                    XCTFail("\(label) \(key) \(seq):\n  expected '\(c[key] ?? "")'\n  got      '\(got)'")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(label): \(failures) decodings differ")
    }

    func testDecodeMatchesReference() throws {
        let cases = try XCTUnwrap(try golden()["decode"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 300)
        checkDecode(try blip(), cases, "blip")
    }

    func testDecodeLeadingSubwordAndCleanup() throws {
        let tok = try blip()
        let ids = tok.encode("there is a man riding a horse , and he ' s happy .", addSpecialTokens: false)
        XCTAssertEqual(tok.decode(ids), "there is a man riding a horse, and he ' s happy.")
        XCTAssertEqual(tok.decode(ids, cleanUpTokenizationSpaces: true), "there is a man riding a horse, and he's happy.")
        XCTAssertEqual(tok.decode([30522, 2050, 2102, 102]), "##at")  // a caption starting with "##a"
    }

    // MARK: Character classes, code point by code point

    func testNormalizerSweep() throws {
        let sweep = try XCTUnwrap(try golden()["sweep"] as? [String: Any])
        var config = try blip().configuration
        config.tokenizeChineseChars = false
        let tok = try BertTokenizer(vocabulary: try blip().vocabulary, configuration: config)
        var expected = [UInt32: String]()
        for r in try XCTUnwrap(sweep["removed"] as? [[Int]]) {
            for v in r[0]...r[1] { expected[UInt32(v)] = "" }
        }
        for m in try XCTUnwrap(sweep["mapped"] as? [[Any]]) {
            expected[UInt32(m[0] as! Int)] = m[1] as? String
        }
        // Batches separated by "|", which normalizes to itself and isolates canonical reordering.
        var failures = 0
        var batch: [UInt32] = []
        func flush() {
            var text = ""
            for v in batch {
                text.unicodeScalars.append(Unicode.Scalar(v)!)
                text.unicodeScalars.append("|")
            }
            // Split on the scalar: "|" followed by a combining mark is one Character.
            let pieces = Array(tok.normalize(text).unicodeScalars)
                .split(separator: "|", omittingEmptySubsequences: false)
                .map { piece -> String in
                    var s = ""
                    s.unicodeScalars.append(contentsOf: piece)
                    return s
                }
            XCTAssertEqual(pieces.count, batch.count + 1, "batch split")
            for (v, piece) in zip(batch, pieces) {
                let want = expected[v] ?? String(Unicode.Scalar(v)!)
                if !piece.unicodeScalars.elementsEqual(want.unicodeScalars) {
                    failures += 1
                    if failures <= 20 {
                        XCTFail("\(hex(v)) normalizes to '\(describe(piece))', reference '\(describe(want))'")
                    }
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
        for v in UInt32(0)...0x10FFFF where !(0xD800...0xDFFF).contains(v) && v != 0x7C {
            batch.append(v)
            if batch.count == 4096 { flush() }
        }
        flush()
        XCTAssertEqual(failures, 0, "\(failures) code points normalize differently")
    }

    func testPreTokenizerSweep() throws {
        let sweep = try XCTUnwrap(try golden()["sweep"] as? [String: Any])
        let tok = try blip()
        var punctuation = Set<UInt32>()
        for r in try XCTUnwrap(sweep["punctuation"] as? [[Int]]) {
            for v in r[0]...r[1] { punctuation.insert(UInt32(v)) }
        }
        let whitespace = Set(try XCTUnwrap(sweep["whitespace"] as? [Int]).map(UInt32.init))
        var failures = 0
        for v in UInt32(0)...0x10FFFF where !(0xD800...0xDFFF).contains(v) {
            let c = Unicode.Scalar(v)!
            // Only the classification matters: compare against the reference's split of "a?b".
            let got = tok.preTokenize("a\(Character(c))b").count
            let want = punctuation.contains(v) ? 3 : whitespace.contains(v) ? 2 : 1
            if got != want {
                failures += 1
                if failures <= 20 { XCTFail("\(hex(v)) splits 'a?b' into \(got) words, reference \(want)") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testChineseCharacterPadding() throws {
        let tok = try blip()
        for p in try XCTUnwrap(try golden()["cjkProbes"] as? [[Any]]) {
            let v = UInt32(p[0] as! Int)
            let text = "x" + String(Character(Unicode.Scalar(v)!)) + "y"
            XCTAssertTrue(tok.normalize(text).unicodeScalars.elementsEqual((p[1] as! String).unicodeScalars),
                          hex(v))
        }
    }

    // MARK: Other configuration layouts

    func testConfigurationVariants() throws {
        let variants = try XCTUnwrap(try golden()["variants"] as? [String: Any])
        XCTAssertEqual(Set(variants.keys), ["v5-saved", "dec-only", "added-tokens-decoder", "cased"])
        for (name, value) in variants.sorted(by: { $0.key < $1.key }) {
            let g = try XCTUnwrap(value as? [String: Any])
            let tok = try BertTokenizer(directory: try variantDirectory(name))
            try checkSpecials(tok, g, name)
            for c in try XCTUnwrap(g["cases"] as? [[String: Any]]) {
                let text = try XCTUnwrap(c["text"] as? String)
                let got = tok.encode(text)
                XCTAssertEqual(got, ids(c["ids"]), "\(name): '\(text)'")
                XCTAssertEqual(got.map { tok.token(forId: $0) ?? "?" }, c["tokens"] as? [String], "\(name): '\(text)'")
                checkDecode(tok, [try XCTUnwrap(c["decode"] as? [String: Any])], "\(name) '\(text)'")
            }
            checkDecode(tok, try XCTUnwrap(g["decode"] as? [[String: Any]]), name)
        }
    }

    // MARK: Errors

    func testErrors() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("bert-tokenizer-errors-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }

        XCTAssertThrowsError(try BertTokenizer(directory: dir)) { error in
            XCTAssertEqual(error as? BertTokenizerError, .missingVocabulary(directory: dir.path))
        }
        try "hello\nworld\n".write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BertTokenizer(directory: dir)) { error in
            XCTAssertEqual(error as? BertTokenizerError, .tokenNotInVocabulary(role: "unk", token: "[UNK]"))
        }
        try "{not json".write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BertTokenizer(directory: dir)) { error in
            guard case .unreadableFile = error as? BertTokenizerError else { return XCTFail("\(error)") }
        }
        try #"{"do_lower_case": "yes"}"#.write(to: dir.appendingPathComponent("tokenizer_config.json"),
                                                atomically: true, encoding: .utf8)
        try "[UNK]\nhello\n".write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BertTokenizer(directory: dir)) { error in
            guard case .invalidConfiguration(_, "do_lower_case", _) = error as? BertTokenizerError else {
                return XCTFail("\(error)")
            }
        }
        try "{}".write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let tok = try BertTokenizer(directory: dir)
        XCTAssertNil(tok.bosTokenId)
        XCTAssertThrowsError(try tok.captionPrefix(prompt: "hello")) { error in
            XCTAssertEqual(error as? BertTokenizerError, .missingBosToken)
        }
        // [SEP], [PAD], [CLS], [MASK] are appended after the two-word vocabulary.
        XCTAssertEqual(tok.encode("Hello hello xyz"), [4, 1, 1, 0, 2])
        XCTAssertEqual(tok.vocabularySize, 6)
    }

    // MARK: Speed

    func testEncodingSpeed() throws {
        let tok = try blip()
        let lines = (0..<20_000).map { "a painting of a mountain landscape, trending on artstation \($0)" }
        let start = Date()
        var n = 0
        for line in lines { n += tok.encode(line).count }
        let elapsed = Date().timeIntervalSince(start)
        print("BertTokenizer: \(lines.count) lines, \(n) ids in \(String(format: "%.3f", elapsed)) s")
        XCTAssertGreaterThan(n, 0)
    }
}
