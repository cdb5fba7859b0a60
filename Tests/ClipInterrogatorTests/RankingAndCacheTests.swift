import Foundation
import HuggingFaceHub
import NeuralCore
import NeuralModels
@testable import ClipInterrogator
import TestSupport
import XCTest

final class RankingAndCacheTests: XCTestCase {
    /// A table of `count` random unit vectors of width `dimension`, rounded to F16
    /// as the reference holds them.
    func randomTable(count: Int, dimension: Int, seed: UInt64) -> LabelTable {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
        }
        var values = (0..<(count * dimension)).map { _ in next() }
        values.withUnsafeMutableBufferPointer { l2NormalizeRows($0.baseAddress!, rows: count, cols: dimension) }
        let embeddings = Tensor(shape: [count, dimension], scalars: values).converted(to: .f16)
        return LabelTable(name: "t", labels: (0..<count).map { "label \($0)" }, embeddings: embeddings)
    }

    func testChunkedRankingKeepsTheReferencesSurvivors() {
        let table = randomTable(count: 111_867, dimension: 16, seed: 1)
        var image = Array(table.segments[0].floats()[0..<16])
        image[3] += 0.5
        image.withUnsafeMutableBufferPointer { l2NormalizeRows($0.baseAddress!, rows: 1, cols: 16) }
        let chunked = table.rank(image, topCount: 2048, method: .chunked(chunkSize: 2048))
        XCTAssertEqual(chunked.count, 2035, "55 chunks keep ⌊2048/55⌋ = 37 each")
        let scores = table.similarities(to: image)
        XCTAssertEqual(chunked.map { scores[$0] }, chunked.map { scores[$0] }.sorted(by: >), "best first")
        // Every chunk contributes its own 37 best.
        for chunk in 0..<55 {
            let rows = (chunk * 2048)..<min((chunk + 1) * 2048, 111_867)
            let own = Set(chunked.filter { rows.contains($0) })
            let best = Set(rows.sorted { (scores[$0], -$0) > (scores[$1], -$1) }.prefix(37))
            XCTAssertEqual(own, best, "chunk \(chunk)")
        }
        let exact = table.rank(image, topCount: 10, method: .exact)
        XCTAssertEqual(exact, Array(scores.indices.sorted { (scores[$0], -$0) > (scores[$1], -$1) }.prefix(10)))
        XCTAssertEqual(table.rank(image, topCount: 1, method: .chunked(chunkSize: 2048)), [exact[0]],
                       "the overall best survives chunking")
    }

    func testReverseRankingAsTheReference() {
        let table = randomTable(count: 5000, dimension: 8, seed: 2)
        let image = Array(table.segments[0].floats()[8..<16])
        let scores = table.similarities(to: image)
        // Small table: the least similar, least first.
        let small = randomTable(count: 100, dimension: 8, seed: 3)
        let smallScores = small.similarities(to: image)
        XCTAssertEqual(small.rank(image, topCount: 3, reverse: true, method: .chunked(chunkSize: 2048)),
                       Array(smallScores.indices.sorted { (smallScores[$0], $0) < (smallScores[$1], $1) }.prefix(3)))
        // Chunked: each chunk keeps its least similar, but the final pass ranks
        // those survivors by highest similarity (the reference does not reverse it).
        let reversed = table.rank(image, topCount: 5, reverse: true, method: .chunked(chunkSize: 2048))
        let keep = 2048 / 3
        var survivors: [Int] = []
        for chunk in 0..<3 {
            let rows = (chunk * 2048)..<min((chunk + 1) * 2048, 5000)
            survivors += rows.sorted { (scores[$0], $0) < (scores[$1], $1) }.prefix(keep)
        }
        XCTAssertEqual(reversed, Array(survivors.sorted { (scores[$0], -$0) > (scores[$1], -$1) }.prefix(5)))
    }

    func testTopIndicesPartialSelectionMatchesSorting() {
        var generator = SystemRandomNumberGenerator()
        for count in [1, 5, 37, 500] {
            let scores = (0..<3000).map { _ in Float(Int.random(in: 0..<200, using: &generator)) } // many ties
            for reverse in [false, true] {
                let expected = Array(scores.indices.sorted {
                    reverse ? (scores[$0], $0) < (scores[$1], $1) : (scores[$0], -$0) > (scores[$1], -$1)
                }.prefix(count))
                XCTAssertEqual(LabelTable.topIndices(scores, count: count, reverse: reverse), expected)
            }
        }
    }

    func testCacheRoundTripNamingAndStaleness() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("label-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cache = LabelEmbeddingCache(directory: directory, modelName: "ViT-H-14/laion2b@s32b")
        XCTAssertEqual(cache.fileURL(table: "flavors").lastPathComponent, "ViT-H-14_laion2b_s32b_flavors.safetensors")
        let labels = ["a", "b", "c"]
        XCTAssertEqual(LabelEmbeddingCache.hash(of: labels), SHA256.hexDigest(Array("a,b,c".utf8)))
        XCTAssertNil(cache.load(table: "flavors", labels: labels), "nothing cached yet")

        let table = randomTable(count: 3, dimension: 4, seed: 9)
        try cache.store(table: "flavors", labels: labels, embeddings: table.segments[0])
        let loaded = try XCTUnwrap(cache.load(table: "flavors", labels: labels))
        XCTAssertEqual(loaded.dtype, .f16)
        XCTAssertEqual(loaded.floats(), table.segments[0].floats())
        let file = try SafeTensorsFile(contentsOf: cache.fileURL(table: "flavors"))
        XCTAssertEqual(file.names, ["embeds", "hash"])
        XCTAssertEqual(try file.tensor("hash").dtype, .i8)
        XCTAssertEqual(try file.tensor("hash").shape, [64])

        XCTAssertNil(cache.load(table: "flavors", labels: ["a", "b", "d"]), "a changed label list is stale")
        XCTAssertNil(cache.load(table: "flavors", labels: ["a", "b"]), "a shorter list is stale")
        try Data("not a safetensors file".utf8).write(to: cache.fileURL(table: "flavors"))
        XCTAssertNil(cache.load(table: "flavors", labels: labels), "a corrupt cache is ignored and rebuilt")
    }

    /// A cache of another embedding width (another model filed under the same
    /// name) whose labels match is rebuilt, not trusted (it used to stop the
    /// program in a LabelTable precondition).
    func testACacheOfAnotherWidthIsRebuilt() throws {
        let clip = try CLIPEncoder(directory: Fixtures.url("interrogator/clip"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stale-width-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let labels = ["a cat", "a dog", "a boat"]
        let list = LabelSet.List(name: "mediums", labels: labels)
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.cacheDirectory = directory
        configuration.labelSet = LabelSet(artists: list, flavors: list, mediums: list, movements: list, trendings: list, negative: list)
        let cache = LabelEmbeddingCache(directory: directory, modelName: "tiny/random")
        let otherWidth = clip.embeddingDimension + 3
        try cache.store(table: "mediums", labels: labels, embeddings: Tensor(zeros: [labels.count, otherWidth]))
        XCTAssertEqual(cache.load(table: "mediums", labels: labels)?.shape, [labels.count, otherWidth], "a valid file of another width")

        let interrogator = Interrogator(encoder: clip, captioner: nil, configuration: configuration)
        let tables = try interrogator.labelTables()
        XCTAssertEqual(tables.mediums.dimension, clip.embeddingDimension)
        XCTAssertEqual(cache.load(table: "mediums", labels: labels)?.shape, [labels.count, clip.embeddingDimension], "rewritten")
        let image = try interrogator.imageEmbedding([ImageDecoder.decode(contentsOf: Fixtures.url("blip/image0.png"))])
        XCTAssertEqual(try interrogator.analysis(image: image, count: 2).first?.matches.count, 2)
    }
}
