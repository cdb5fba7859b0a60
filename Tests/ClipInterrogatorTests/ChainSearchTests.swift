import Foundation
import NeuralCore
import NeuralModels
@testable import ClipInterrogator
import TestSupport
import XCTest

/// The prefix-cached chain search against full re-encoding on a tiny CLIP with the
/// real vocabulary (Tests/Fixtures/interrogator/clip).
final class ChainSearchTests: XCTestCase {
    static func makeInterrogator(reusePrefix: Bool, flavorCount: Int) throws -> Interrogator {
        let clip = try CLIPModel(directory: Fixtures.url("interrogator/clip"))
        let tokenizer = try CLIPTokenizer(directory: Fixtures.url("clip-tokenizer"))
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.reuseChainPrefix = reusePrefix
        func table(_ name: String, _ labels: [String]) throws -> LabelTable {
            let ids = labels.map { tokenizer.encodeUnpadded($0).map(Int.init) }
            return LabelTable(name: name, labels: labels, embeddings: try clip.textEmbeddings(ids).converted(to: .f16))
        }
        let flavors = Array(try ReferenceLabels.list(.flavors).prefix(flavorCount))
        let tables = Interrogator.LabelTables(
            artists: try table("artists", Array(ReferenceLabels.artists(from: try ReferenceLabels.list(.artists)).prefix(50))),
            flavors: try table("flavors", flavors), mediums: try table("mediums", try ReferenceLabels.list(.mediums)),
            movements: try table("movements", try ReferenceLabels.list(.movements)),
            trendings: try table("trendings", ReferenceLabels.trendings),
            negative: try table("negative", try ReferenceLabels.list(.negative)), custom: [])
        return Interrogator(encoder: CLIPEncoder(model: clip, tokenizer: tokenizer, processor: CLIPImageProcessor(size: 32)),
                            captioner: nil, configuration: configuration, tables: tables)
    }

    func testPrefixCachedChainEqualsFullReencoding() throws {
        let cached = try Self.makeInterrogator(reusePrefix: true, flavorCount: 300)
        let full = try Self.makeInterrogator(reusePrefix: false, flavorCount: 300)
        let image = try cached.imageEmbedding([ImageDecoder.decode(contentsOf: Fixtures.url("blip/image0.png"))])
        let phrases = try cached.labelTables().merged.rankLabels(image, topCount: 400, method: .chunked(chunkSize: 2048))
        for reverse in [false, true] {
            var cachedSteps: [(Int, [String], [Float])] = [], fullSteps: [(Int, [String], [Float])] = []
            let start: (String, Float)? = reverse ? nil : ("a tiny random caption", try cached.similarity(image, "a tiny random caption"))
            let a = try cached.chain(image: image, phrases: phrases, start: start, minCount: 8, maxCount: 32,
                                     reverse: reverse, name: "test") { cachedSteps.append(($0, $1, $2)); _ = $3 }
            let b = try full.chain(image: image, phrases: phrases, start: start, minCount: 8, maxCount: 32,
                                   reverse: reverse, name: "test") { fullSteps.append(($0, $1, $2)); _ = $3 }
            XCTAssertEqual(a, b, "the same prompt (reverse: \(reverse))")
            XCTAssertEqual(cachedSteps.count, fullSteps.count)
            XCTAssertGreaterThanOrEqual(cachedSteps.count, 8, "a full chain of at least min_count steps")
            var candidates = 0
            for (x, y) in zip(cachedSteps, fullSteps) {
                XCTAssertEqual(x.1, y.1, "step \(x.0): the same candidates")
                assertClose(x.2, y.2, tolerance: 1e-5, "step \(x.0) similarities (reverse: \(reverse))")
                candidates += x.1.count
            }
            XCTAssertGreaterThan(candidates, 1000)
        }
    }

    /// With an unbounded margin the turbo chain re-scores every candidate at every
    /// step, so over the whole pool it is the exact chain; with the default margin
    /// it is deterministic, scores far fewer texts, and keeps best mode's final
    /// choice (never below the fast prompt).
    func testTurboChainIsLazyGreedy() throws {
        let interrogator = try Self.makeInterrogator(reusePrefix: true, flavorCount: 300)
        let image = try interrogator.imageEmbedding([ImageDecoder.decode(contentsOf: Fixtures.url("blip/image0.png"))])
        let phrases = try interrogator.labelTables().merged.rankLabels(image, topCount: 400, method: .chunked(chunkSize: 2048))
        let start = ("a tiny random caption", try interrogator.similarity(image, "a tiny random caption"))
        var exactTexts = 0, lazyTexts = 0, firstStepPasses = 0
        let exact = try interrogator.chain(image: image, phrases: phrases, start: start, minCount: 8, maxCount: 32, name: "exact") {
            exactTexts += $3.texts
        }
        let unbounded = TurboSettings(poolSize: phrases.count, batchSize: 17, margin: .infinity)
        XCTAssertEqual(try interrogator.turboChain(image: image, phrases: phrases, start: start, minCount: 8, maxCount: 32,
                                                   settings: unbounded, name: "turbo"), exact)
        let lazy = { try interrogator.turboChain(image: image, phrases: phrases, start: start, minCount: 8, maxCount: 32,
                                                 settings: TurboSettings(poolSize: phrases.count), name: "turbo") { step, _, _, cost in
            lazyTexts += cost.texts
            if step == 0 { firstStepPasses += 1 }
        } }
        let first = try lazy()
        let firstTexts = lazyTexts
        XCTAssertEqual(firstStepPasses, 1, "the first step scores the whole pool in one pass through the text tower")
        XCTAssertEqual(try lazy(), first, "deterministic")
        XCTAssertEqual(lazyTexts, 2 * firstTexts, "the same work twice")
        // The first step scores the whole pool, later steps about one batch each.
        XCTAssertLessThan(firstTexts, exactTexts / 2, "the lazy chain scores a fraction of the texts (\(firstTexts) vs \(exactTexts))")
        let caption = "a tiny random caption"
        let turbo = try interrogator.turboPrompt(image: image, caption: caption)
        XCTAssertGreaterThanOrEqual(try interrogator.similarity(image, turbo),
                                    try interrogator.similarity(image, try interrogator.fastPrompt(image: image, caption: caption)))
    }
}

