import Foundation
import NeuralCore
import NeuralModels
@testable import ClipInterrogator
import TestSupport
import XCTest

/// Every mode against the real clip-interrogator 0.6.0 run on the same tiny random
/// CLIP (real vocabulary) and BLIP weights and the same images, by
/// Weights/fixtures/make_interrogator_fixtures.py (PYTHONHASHSEED=0):
/// Tests/Fixtures/interrogator/golden.json.
final class InterrogatorParityTests: XCTestCase {
    struct Golden: Decodable {
        struct Table: Decodable { let count: Int; let hash: String; let cache_file: String }
        struct Prompt: Decodable { let prompt: String; let ids: [Int] }
        struct Analysis: Decodable { let labels: [String]; let similarities: [Float] }
        struct Image: Decodable {
            let file: String
            let caption: String
            let image_features: [Float]
            let analyze: [String: Analysis]
            let fast: Prompt, classic: Prompt, best: Prompt, negative: Prompt
        }
        let tables: [String: Table]
        let images: [Image]
    }

    static let cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("interrogator-parity-\(UUID().uuidString)")
    nonisolated(unsafe) static var shared: (Interrogator, Golden)?

    /// One interrogator for the whole class: building embeds all 111,867 labels.
    func interrogator() throws -> (Interrogator, Golden) {
        if let shared = Self.shared { return shared }
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Fixtures.url("interrogator/golden.json")))
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.cacheDirectory = Self.cacheDirectory
        let interrogator = try Interrogator.load(clipDirectory: Fixtures.url("interrogator/clip"),
                                                 captionDirectory: Fixtures.url("blip/tiny-base"), configuration: configuration)
        Self.shared = (interrogator, golden)
        return (interrogator, golden)
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(at: cacheDirectory)
    }

    func testLabelTablesHashAsTheReferences() throws {
        let (interrogator, golden) = try interrogator()
        let tables = try interrogator.labelTables()
        for (name, table) in [("artists", tables.artists), ("flavors", tables.flavors), ("mediums", tables.mediums),
                              ("movements", tables.movements), ("trendings", tables.trendings), ("negative", tables.negative)] {
            XCTAssertEqual(table.labels.count, golden.tables[name]?.count, name)
            XCTAssertEqual(LabelEmbeddingCache.hash(of: table.labels), golden.tables[name]?.hash, "\(name) hash")
            XCTAssertEqual(LabelEmbeddingCache(directory: Self.cacheDirectory, modelName: "tiny/random").fileURL(table: name).lastPathComponent,
                           golden.tables[name]?.cache_file)
        }
    }

    func testEveryModeMatchesTheReference() throws {
        let (interrogator, golden) = try interrogator()
        for expected in golden.images {
            let image = try ImageDecoder.decode(contentsOf: Fixtures.url("interrogator/\(expected.file)"))
            let caption = try interrogator.caption(image)
            XCTAssertEqual(caption, expected.caption, "\(expected.file): caption")
            let features = try interrogator.imageEmbedding([image])
            assertClose(features, expected.image_features, tolerance: 1e-5, "\(expected.file): image features")

            func check(_ prompt: String, _ reference: Golden.Prompt, _ mode: String) {
                XCTAssertEqual(interrogator.encoder.tokenize(prompt), reference.ids, "\(expected.file) \(mode): token ids")
                // The text too, except where two labels tokenise identically: their
                // similarities tie exactly, and the reference's order among them
                // (torch.topk's, or a Python set's) is not reproducible.
                let ours = prompt.pythonSplit(", "), theirs = reference.prompt.pythonSplit(", ")
                XCTAssertEqual(ours.count, theirs.count, "\(expected.file) \(mode): \(prompt) vs \(reference.prompt)")
                for (a, b) in zip(ours, theirs) where a != b {
                    XCTAssertEqual(interrogator.encoder.tokenize(a), interrogator.encoder.tokenize(b),
                                   "\(expected.file) \(mode): '\(a)' vs '\(b)' differ beyond a tokenisation tie")
                }
            }
            check(try interrogator.fastPrompt(image: features, caption: caption), expected.fast, "fast")
            check(try interrogator.classicPrompt(image: features, caption: caption), expected.classic, "classic")
            check(try interrogator.bestPrompt(image: features, caption: caption), expected.best, "best")
            check(try interrogator.negativePrompt(image: features), expected.negative, "negative")

            let names = ["medium": "mediums", "artist": "artists", "movement": "movements", "trending": "trendings", "flavor": "flavors"]
            for (table, matches) in try interrogator.analysis(image: features).map({ ($0.table, $0.matches) }) {
                let reference = try XCTUnwrap(expected.analyze[names[table] ?? table], table)
                XCTAssertEqual(matches.map(\.label), reference.labels, "\(expected.file) analyze \(table)")
                assertClose(matches.map(\.similarity), reference.similarities, tolerance: 1e-5, "\(expected.file) analyze \(table) scores")
            }
        }
    }

    /// A caption model that answers "" (as random-weight or badly tuned BLIPs do).
    struct EmptyCaptioner: ImageCaptioning {
        func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> String { "" }
    }

    /// With an empty caption every mode matches the real clip-interrogator run
    /// with a caption model that answers "" (Tests/Fixtures/interrogator/empty-caption.json,
    /// Weights/fixtures/make_empty_caption_fixtures.py): best mode starts its chain
    /// from the best phrase, as the reference's `chain(best_prompt="")` does, and
    /// no prompt starts with ", ". Turbo mode, which the reference lacks, keeps
    /// the same start.
    func testEveryModeWithAnEmptyCaptionMatchesTheReference() throws {
        struct Reference: Decodable {
            struct Prompt: Decodable { let prompt: String; let ids: [Int] }
            struct Image: Decodable { let file: String; let caption: String; let fast: Prompt, classic: Prompt, best: Prompt, negative: Prompt }
            let images: [Image]
        }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Fixtures.url("interrogator/empty-caption.json")))
        let (shared, _) = try interrogator()
        let interrogator = Interrogator(encoder: shared.encoder, captioner: EmptyCaptioner(), configuration: shared.configuration)
        XCTAssertEqual(reference.images.count, 3)
        for expected in reference.images {
            let image = try ImageDecoder.decode(contentsOf: Fixtures.url("interrogator/\(expected.file)"))
            XCTAssertEqual(expected.caption, "")
            for (mode, golden) in [(InterrogationMode.fast, expected.fast), (.classic, expected.classic), (.best, expected.best)] {
                let result = try interrogator.interrogate([image], mode: mode)
                XCTAssertEqual(result.caption, "")
                let prompt = try XCTUnwrap(result.prompt)
                XCTAssertEqual(interrogator.encoder.tokenize(prompt), golden.ids, "\(expected.file) \(mode): \(prompt) vs \(golden.prompt)")
            }
            let negative = try XCTUnwrap(interrogator.interrogate([image], mode: .negative).negativePrompt)
            XCTAssertEqual(interrogator.encoder.tokenize(negative), expected.negative.ids, "\(expected.file) negative")
            XCTAssertEqual(try interrogator.interrogate([image], mode: .caption).prompt, "")
            let turbo = try XCTUnwrap(interrogator.interrogate([image], mode: .turbo).prompt)
            XCTAssertFalse(turbo.hasPrefix(","), "\(expected.file) turbo: \(turbo)")
            XCTAssertFalse(turbo.isEmpty)
        }
    }

    /// Caches written by the reference load here, and ours are byte-identical to
    /// the reference's, so the reference loads ours.
    func testCachesInterchangeWithTheReference() throws {
        let (interrogator, _) = try interrogator()
        let reference = LabelEmbeddingCache(directory: Fixtures.url("interrogator/cache"), modelName: "tiny/random")
        let tables = try interrogator.labelTables()
        for (name, table) in [("mediums", tables.mediums), ("movements", tables.movements),
                              ("trendings", tables.trendings), ("negative", tables.negative)] {
            let loaded = try XCTUnwrap(reference.load(table: name, labels: table.labels), "\(name): the reference's cache loads")
            let ours = try Data(contentsOf: LabelEmbeddingCache(directory: Self.cacheDirectory, modelName: "tiny/random").fileURL(table: name))
            // Rewrite the reference's embeddings with our writer: the very same bytes.
            let rewritten = FileManager.default.temporaryDirectory.appendingPathComponent("rewrite-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: rewritten) }
            try LabelEmbeddingCache(directory: rewritten, modelName: "tiny/random").store(table: name, labels: table.labels, embeddings: loaded)
            XCTAssertEqual(try Data(contentsOf: LabelEmbeddingCache(directory: rewritten, modelName: "tiny/random").fileURL(table: name)),
                           try Data(contentsOf: reference.fileURL(table: name)), "\(name): our writer reproduces the reference's file")
            // Our own embeddings agree with the reference's to F16 rounding: both round
            // F32 values that differ in the last bits, so an element may land one F16
            // step away.
            let computed = try XCTUnwrap(LabelEmbeddingCache(directory: Self.cacheDirectory, modelName: "tiny/random")
                .load(table: name, labels: table.labels), "\(name): our cache loads").floats()
            let expected = loaded.floats()
            let steps = zip(computed, expected).map { abs($0 - $1) / max(abs($1), 1e-3) }
            XCTAssertLessThanOrEqual(steps.max() ?? 0, 1.0 / 1024, "\(name): within one F16 step")
            XCTAssertEqual(ours.count, try Data(contentsOf: reference.fileURL(table: name)).count, "\(name): same layout")
            // A tampered label list makes the cache stale.
            XCTAssertNil(reference.load(table: name, labels: table.labels.dropLast() + ["tampered"]))
        }
    }
}

/// Tables come from the reference's published caches when the own cache has none.
final class PrecomputedCacheTests: XCTestCase {
    func testPublishedCachesAreUsedAsTheyAre() throws {
        let clip = try CLIPModel(directory: Fixtures.url("interrogator/clip"))
        let tokenizer = try CLIPTokenizer(directory: Fixtures.url("clip-tokenizer"))
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.precomputedCacheDirectory = Fixtures.url("interrogator/cache")
        let encoder = CLIPEncoder(model: clip, tokenizer: tokenizer, processor: CLIPImageProcessor(size: 32))
        let builder = LabelTableBuilder(encoder: encoder, configuration: configuration, report: { _ in })
        let mediums = try ReferenceLabels.list(.mediums)
        let table = try builder.table(LabelSet.List(name: "mediums", labels: mediums))
        let published = try XCTUnwrap(LabelEmbeddingCache(directory: Fixtures.url("interrogator/cache"), modelName: "tiny/random")
            .load(table: "mediums", labels: mediums))
        XCTAssertEqual(table.segments[0].withUnsafeBytes { Array($0) }, published.withUnsafeBytes { Array($0) },
                       "the published embeddings, bit for bit")
        // A table the published caches lack (or whose labels differ) is computed.
        var custom = mediums
        custom[0] = "a different first label"
        XCTAssertEqual(try builder.table(LabelSet.List(name: "mediums", labels: custom)).labels, custom)
    }
}
