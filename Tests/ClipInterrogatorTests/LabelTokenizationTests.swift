import Foundation
import NeuralCore
import NeuralModels
@testable import ClipInterrogator
import TestSupport
import XCTest

/// Every label the interrogator ranks, plus fuzz and hand-written texts, tokenized
/// as open_clip's `SimpleTokenizer` does (Weights/fixtures/make_clip_tokenizer_fixtures.py:
/// Tests/Fixtures/clip-tokenizer/golden.safetensors). The labels come from the
/// package's vendored lists, in the script's section order; only the other texts
/// are stored with the fixture.
final class LabelTokenizationTests: XCTestCase {
    func testReferenceLabelsAndFuzzMatchOpenCLIP() throws {
        let tokenizer = try CLIPTokenizer(directory: Fixtures.url("clip-tokenizer"))
        let artists = try ReferenceLabels.list(.artists)
        let extra = try JSONDecoder().decode([String].self, from: Data(contentsOf: Fixtures.url("clip-tokenizer/extra_texts.json")))
        let parts: [(name: String, texts: [String])] = [
            ("artists.txt", artists), ("flavors.txt", try ReferenceLabels.list(.flavors)),
            ("mediums.txt", try ReferenceLabels.list(.mediums)), ("movements.txt", try ReferenceLabels.list(.movements)),
            ("negative.txt", try ReferenceLabels.list(.negative)), ("by-artist", artists.map { "by \($0)" }),
            ("inspired-by-artist", artists.map { "inspired by \($0)" }), ("trending", ReferenceLabels.trendings),
        ]
        let texts = parts.flatMap(\.texts) + extra

        let golden = try SafeTensorsFile(contentsOf: Fixtures.url("clip-tokenizer/golden.safetensors"))
        let ids = try golden.tensor("ids_flat"), lengthsTensor = try golden.tensor("lengths")
        XCTAssertEqual(ids.dtype, .u16)
        XCTAssertEqual(lengthsTensor.dtype, .u8)
        let expectedIDs = ids.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }.map { UInt16(littleEndian: $0) }
        let lengths = lengthsTensor.withUnsafeBytes { Array($0.bindMemory(to: UInt8.self)) }
        XCTAssertEqual(lengths.count, texts.count)
        XCTAssertEqual(lengths.reduce(0) { $0 + Int($1) }, expectedIDs.count)

        // "name:start:count" sections: the labels' must be exactly the vendored lists'.
        let sections: [(name: String, range: Range<Int>)] = (golden.metadata["sections"] ?? "").split(separator: ",").map {
            let fields = $0.split(separator: ":")
            let start = Int(fields[1])!
            return (String(fields[0]), start..<(start + Int(fields[2])!))
        }
        XCTAssertEqual(Array(sections.prefix(parts.count).map(\.name)), parts.map(\.name))
        XCTAssertEqual(Array(sections.prefix(parts.count).map(\.range.count)), parts.map(\.texts.count))
        XCTAssertEqual(sections.dropFirst(parts.count).map(\.range.count).reduce(0, +), extra.count)
        let labelCount = sections.filter { ["by-artist", "inspired-by-artist", "flavors.txt", "mediums.txt", "movements.txt", "trending"].contains($0.name) }
            .reduce(0) { $0 + $1.range.count }
        XCTAssertEqual(labelCount, 111_867, "the reference interrogator's label count")

        var offset = 0
        var mismatches = 0
        var report: [String] = []
        for (index, text) in texts.enumerated() {
            let length = Int(lengths[index])
            let expected = expectedIDs[offset..<(offset + length)].map { Int32($0) }
            offset += length
            let actual = tokenizer.encodeUnpadded(text)
            if actual != expected {
                mismatches += 1
                if report.count < 10 {
                    let section = sections.first { $0.range.contains(index) }?.name ?? "?"
                    report.append("[\(section) #\(index)] \(escapedScalars(text))\n  expected \(expected)\n  actual   \(actual)")
                }
            }
        }
        XCTAssertEqual(mismatches, 0, "\(mismatches) of \(texts.count) texts differ from open_clip; first ones:\n" + report.joined(separator: "\n"))
    }
}
