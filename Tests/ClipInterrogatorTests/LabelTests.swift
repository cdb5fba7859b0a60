import Foundation
import HuggingFaceHub
import NeuralCore
@testable import ClipInterrogator
import TestSupport
import XCTest

final class LabelTests: XCTestCase {
    func testLoadListFollowsPythonReadlinesAndStrip() {
        let data = Data("  a \n\nb\r\nc\rd\u{3000}\n\u{1C}e\u{1F}\n \t".utf8)
        XCTAssertEqual(LabelList.parse(data), ["a", "", "b", "c", "d", "e", ""])
        XCTAssertEqual(LabelList.parse(Data("x\n".utf8)), ["x"], "no empty item after a final newline")
        XCTAssertEqual(LabelList.parse(Data()), [])
        // U+200B is not whitespace to Python.
        XCTAssertEqual(LabelList.pythonStripped("\u{200B}x\u{A0}"), "\u{200B}x")
    }

    func testBundledListsAreTheReferencesTables() throws {
        let artists = ReferenceLabels.artists(from: try ReferenceLabels.list(.artists))
        let flavors = try ReferenceLabels.list(.flavors)
        let counts = [artists.count, flavors.count, try ReferenceLabels.list(.mediums).count,
                      try ReferenceLabels.list(.movements).count, ReferenceLabels.trendings.count, try ReferenceLabels.list(.negative).count]
        XCTAssertEqual(counts, [10530, 100970, 95, 200, 72, 41])
        XCTAssertEqual(counts.prefix(5).reduce(0, +), 111_867)
        XCTAssertEqual(flavors.filter(\.isEmpty).count, 1, "flavors.txt has one empty line, kept as a label")
        XCTAssertTrue(ReferenceLabels.trendings.contains("trending on dribble"))
        XCTAssertEqual(ReferenceLabels.trendings.first, "Artstation")
        XCTAssertEqual(ReferenceLabels.trendings.last, "zbrush central contest winner")
        XCTAssertTrue(artists[0].hasPrefix("by ") && artists[5265].hasPrefix("inspired by "))
    }

    /// The digests come from the PyPI wheel (Weights/fixtures/make_label_list_digests.py).
    func testReferenceLabelSetKeepsTheReferencesCacheNames() throws {
        let set = try LabelSet.reference()
        let lists = [set.artists, set.flavors, set.mediums, set.movements, set.trendings, set.negative]
        XCTAssertEqual(lists.map(\.name), ["artists", "flavors", "mediums", "movements", "trendings", "negative"])
        XCTAssertEqual(lists.map(\.title), ["artist", "flavor", "medium", "movement", "trending", "negative"])
        XCTAssertEqual(set.trendings.labels, ReferenceLabels.trendings)
        XCTAssertEqual(set.artists.labels.count, 10530)
    }

    func testLabelSetFolderMapsRolesToLists() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("label-set-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
        }
        func loadError() -> LabelSet.LoadError? {
            do { _ = try LabelSet(directory: folder); return nil } catch { return error as? LabelSet.LoadError }
        }
        let index = folder.appendingPathComponent("label-set.json").path
        XCTAssertEqual(loadError(), .missingIndex(path: index))
        try write("label-set.json", "[1, 2]")
        XCTAssertEqual(loadError(), .invalidIndex(path: index, reason: "expected an object of role to list name"))
        let roles = ["artists": "colors", "flavors": "shapes", "mediums": "colors", "movements": "colors",
                     "trendings": "shapes", "negative": "colors"]
        var partial = roles
        partial["trendings"] = nil
        try write("label-set.json", String(decoding: try JSONSerialization.data(withJSONObject: partial), as: UTF8.self))
        guard case .invalidIndex(_, let reason)? = loadError() else { return XCTFail("a missing role is an invalid index") }
        XCTAssertTrue(reason.contains("trendings"), reason)
        var escaping = roles
        escaping["negative"] = "../colors"
        try write("label-set.json", String(decoding: try JSONSerialization.data(withJSONObject: escaping), as: UTF8.self))
        XCTAssertEqual(loadError(), .invalidIndex(path: index, reason: "\"../colors\" is not a list name"))
        try write("label-set.json", String(decoding: try JSONSerialization.data(withJSONObject: roles), as: UTF8.self))
        XCTAssertEqual(loadError(), .missingList(path: folder.appendingPathComponent("colors.txt").path))
        try write("colors.txt", "red\n green \nblue\n")
        try write("shapes.txt", "circle\r\nsquare")
        let set = try LabelSet(directory: folder)
        XCTAssertEqual(set.mediums, LabelSet.List(name: "colors", labels: ["red", "green", "blue"]))
        XCTAssertEqual(set.flavors.labels, ["circle", "square"])
        XCTAssertEqual(set.trendings.title, "shapes")
    }

    func testVendoredListsAreByteIdenticalToTheReferenceRelease() throws {
        let digests = try JSONDecoder().decode([String: String].self,
                                               from: Data(contentsOf: Fixtures.url("interrogator/list-digests.json")))
        XCTAssertEqual(Set(digests.keys), Set(ReferenceLabels.ListFile.allCases.map(\.rawValue)))
        for file in ReferenceLabels.ListFile.allCases {
            let bundled = try Data(contentsOf: ReferenceLabels.url(of: file))
            XCTAssertEqual(SHA256.hexDigest(bundled), digests[file.rawValue], file.rawValue)
        }
    }

    func testPythonStringHelpers() {
        XCTAssertEqual("a, b, , c".pythonSplit(", "), ["a", "b", "", "c"])
        XCTAssertEqual(", x, ".pythonSplit(", "), ["", "x", ""])
        XCTAssertEqual("abc".pythonSplit(", "), ["abc"])
        // A combining mark after the separator's space: Python splits, grapheme logic would not.
        XCTAssertEqual("a, \u{301}b".pythonSplit(", "), ["a", "\u{301}b"])
        XCTAssertTrue("oil painting of".pythonHasPrefix("oil painting"))
        XCTAssertFalse("e\u{301}clair".pythonHasPrefix("\u{E9}"), "code points, not canonical equivalence")
    }
}
