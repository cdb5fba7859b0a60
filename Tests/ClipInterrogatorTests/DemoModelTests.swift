import Foundation
import NeuralCore
import NeuralModels
@testable import ClipInterrogator
import TestSupport
import XCTest

/// The demo model pair (Weights/demo) end to end on its 100 held-out images
/// (Tests/Fixtures/demo, written by Weights/demo/train_demo.py): the captions and
/// label rankings are right on at least 90% of them, and they, the analysis and
/// every mode's prompt equal what the real clip-interrogator 0.6.0 makes of the
/// same images with the same files (Weights/fixtures/make_demo_fixtures.py:
/// Tests/Fixtures/demo/reference.json).
final class DemoModelTests: XCTestCase {
    struct Heldout: Decodable {
        struct Entry: Decodable { let file: String; let caption: String; let truth: [String: [String]] }
        let images: [Entry]
    }

    struct Reference: Decodable {
        struct Table: Decodable { let table: String; let labels: [String]; let similarities: [Float] }
        struct Entry: Decodable {
            let file: String
            let caption: String
            let analysis: [Table]
            let fast: String, classic: String, best: String, negative: String
        }
        let images: [Entry]
    }

    /// What the Swift pipeline makes of one image.
    struct Output {
        let caption: String
        let analysis: [TableMatches]
        let image: [Float]
    }

    nonisolated(unsafe) static var shared: (Interrogator, [Heldout.Entry], [Reference.Entry], [Output])?

    /// Runs the pipeline over the held-out set once for the whole class.
    func run() throws -> (Interrogator, [Heldout.Entry], [Reference.Entry], [Output]) {
        if let shared = Self.shared { return shared }
        let heldout = try JSONDecoder().decode(Heldout.self, from: Data(contentsOf: Fixtures.url("demo/heldout.json"))).images
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Fixtures.url("demo/reference.json"))).images
        XCTAssertEqual(heldout.map(\.file), reference.map(\.file))
        XCTAssertEqual(heldout.count, 100)
        let interrogator = try DemoModel.interrogator()
        let outputs = try heldout.map { entry in
            let image = try ImageDecoder.decode(contentsOf: Fixtures.url("demo/" + entry.file))
            let features = try interrogator.imageEmbedding([image])
            return Output(caption: try interrogator.caption(image), analysis: try interrogator.analysis(image: features),
                          image: features)
        }
        Self.shared = (interrogator, heldout, reference, outputs)
        return Self.shared!
    }

    /// (colour, shape) pairs a caption of the demo grammar names
    /// ("two red circles" and "a red circle" both name (red, circle)).
    static func objects(in caption: String) -> Set<[String]> {
        let words = caption.replacingOccurrences(of: ",", with: " ").split(separator: " ").map(String.init)
        var found = Set<[String]>()
        for i in words.indices.dropLast(2) where ["a", "an", "two"].contains(words[i]) {
            let shape = words[i + 2].hasSuffix("s") ? String(words[i + 2].dropLast()) : words[i + 2]
            found.insert([words[i + 1], shape])
        }
        return found
    }

    func testCaptionsNameTheRightColoursAndShapes() throws {
        let (_, heldout, _, outputs) = try run()
        var right = 0
        for (entry, output) in zip(heldout, outputs) {
            if Self.objects(in: output.caption) == Self.objects(in: entry.caption) { right += 1 }
        }
        XCTAssertGreaterThanOrEqual(right, 90, "captions naming every object's colour and shape: \(right) of 100")
    }

    func testTopColourAndShapeLabelsAreRight() throws {
        let (_, heldout, _, outputs) = try run()
        var right = 0
        for (entry, output) in zip(heldout, outputs) {
            let top = Dictionary(uniqueKeysWithValues: output.analysis.map { ($0.table, $0.matches[0].label) })
            if let colour = top["colors"], let shape = top["shapes"],
               entry.truth["colors"]!.contains(colour), entry.truth["shapes"]!.contains(shape) {
                right += 1
            }
        }
        XCTAssertGreaterThanOrEqual(right, 90, "top colour and top shape both right: \(right) of 100")
    }

    func testCaptionsAndRankingsEqualTheReference() throws {
        let (_, _, reference, outputs) = try run()
        for (golden, output) in zip(reference, outputs) {
            XCTAssertEqual(output.caption, golden.caption, golden.file)
            XCTAssertEqual(output.analysis.map(\.table), golden.analysis.map(\.table), golden.file)
            for (table, expected) in zip(output.analysis, golden.analysis) {
                XCTAssertEqual(table.matches.map(\.label), expected.labels, "\(golden.file) \(table.table)")
                for (match, similarity) in zip(table.matches, expected.similarities) {
                    XCTAssertEqual(match.similarity, similarity, accuracy: 1e-4, "\(golden.file) \(match.label)")
                }
            }
        }
    }

    func testEveryModeEqualsTheReference() throws {
        let (interrogator, _, reference, outputs) = try run()
        for (golden, output) in zip(reference, outputs) {
            XCTAssertEqual(try interrogator.fastPrompt(image: output.image, caption: output.caption), golden.fast, golden.file)
            XCTAssertEqual(try interrogator.classicPrompt(image: output.image, caption: output.caption), golden.classic, golden.file)
            XCTAssertEqual(try interrogator.bestPrompt(image: output.image, caption: output.caption), golden.best, golden.file)
            XCTAssertEqual(try interrogator.negativePrompt(image: output.image), golden.negative, golden.file)
        }
    }

    /// Turbo mode on the 100 held-out images against the reference's best and fast
    /// prompts: never less similar to the image than fast mode, and on average at
    /// least 99% of best mode's similarity (the quality bar; the
    /// benchmark's --turbo-quality prints the full table).
    func testTurboKeepsBestModeQuality() throws {
        let (interrogator, _, reference, outputs) = try run()
        var ratios: [Float] = [], identical = 0
        for (golden, output) in zip(reference, outputs) {
            let turbo = try interrogator.turboPrompt(image: output.image, caption: output.caption)
            let (ours, best, fast) = (try interrogator.similarity(output.image, turbo),
                                      try interrogator.similarity(output.image, golden.best),
                                      try interrogator.similarity(output.image, golden.fast))
            XCTAssertGreaterThanOrEqual(ours, fast, "\(golden.file): turbo '\(turbo)' below fast '\(golden.fast)'")
            ratios.append(ours / best)
            if turbo == golden.best { identical += 1 }
        }
        let mean = ratios.reduce(0, +) / Float(ratios.count)
        XCTAssertGreaterThanOrEqual(mean, 0.99, "mean turbo/best similarity \(mean) (\(identical) of 100 identical)")
    }

    /// Captions and image embeddings computed 8 images at a time equal those
    /// computed one image at a time, bit for bit (so batched runs give the same
    /// prompts).
    func testBatchesOfEightEqualOneAtATime() throws {
        if let forced = ProcessInfo.processInfo.environment["NEURALCORE_BLAS_CORE"], BLAS.provider == "OpenBLAS" {
            XCTAssertEqual(BLAS.core?.lowercased(), forced.lowercased(), "the kernel asked for is in force")
        }
        let (interrogator, heldout, _, outputs) = try run()
        for start in stride(from: 0, to: heldout.count, by: 8) {
            let entries = heldout[start..<min(start + 8, heldout.count)]
            let images = try entries.map { try ImageDecoder.decode(contentsOf: Fixtures.url("demo/" + $0.file)) }
            let features = try interrogator.features(ofEach: images)
            for (i, output) in outputs[start..<start + images.count].enumerated() {
                XCTAssertEqual(features[i].caption, output.caption, "image \(start + i) caption")
                XCTAssertEqual(features[i].embedding, output.image, "image \(start + i) embedding")
            }
        }
    }

    /// The same on OpenBLAS's Haswell kernel, the one it picks on CPUs with AVX2
    /// but not AVX-512, whose sums for a row depend on the row's place in a
    /// product (see `BLAS.rowAlignment`): in a child process, which selects that
    /// kernel before its first product.
    func testBatchesOfEightEqualOneAtATimeOnTheAVX2Kernel() throws {
        try assertPassesOnOpenBLASHaswellKernel("ClipInterrogatorTests.DemoModelTests/testBatchesOfEightEqualOneAtATime")
    }
}

