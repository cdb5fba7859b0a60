@testable import ClipInterrogator
import Foundation
import HuggingFaceHub
import TestSupport
import XCTest

/// What the interrogator adds to the Hugging Face Hub client: the reference's model
/// names, the label-cache name of a resolved model and its models' file sets. The
/// client itself is tested in `HuggingFaceHubTests`.
final class ModelNameTests: XCTestCase {
    /// A fresh folder for one test, removed after it.
    private func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("model-names-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A resolver over the cache at `cacheRoot` that may use no network (offline)
    /// and knows the reference's names.
    private func resolver(cacheRoot: URL) -> ModelResolver {
        ModelResolver(environment: HubEnvironment(cacheDirectory: cacheRoot, offline: true), aliases: .clipInterrogator)
    }

    func testAliasesMapBothWays() throws {
        XCTAssertEqual(ModelAliases.repository(for: "ViT-L-14/openai"), "openai/clip-vit-large-patch14")
        XCTAssertEqual(ModelAliases.repository(for: "ViT-bigG-14/laion2b_s39b_b160k"), "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k")
        XCTAssertEqual(ModelAliases.repository(for: "blip-large"), "Salesforce/blip-image-captioning-large")
        XCTAssertEqual(ModelAliases.repository(for: "vit-h-14/LAION2B_S32B_B79K"), "laion/CLIP-ViT-H-14-laion2B-s32B-b79K")
        XCTAssertNil(ModelAliases.repository(for: "ViT-X/nobody"))
        for alias in ModelAliases.all {
            XCTAssertEqual(ModelAliases.referenceName(forRepository: alias.repository), alias.name)
            XCTAssertEqual(ModelAliases.referenceName(forRepository: alias.repository.uppercased()), alias.name)
        }
        XCTAssertEqual(ModelAliases.all.count, 8)
        XCTAssertEqual(try ModelResolver.repository(for: "ViT-B-32/openai", aliases: .clipInterrogator), "openai/clip-vit-base-patch32")
        XCTAssertEqual(try ModelResolver.repository(for: "some-org/some.model_1", aliases: .clipInterrogator), "some-org/some.model_1")
        for bad in ["no-slash", "a/b/c", "a--b/c", "../x", "a/", "/b", "org/na me"] {
            XCTAssertThrowsError(try ModelResolver.repository(for: bad, aliases: .clipInterrogator), bad) { error in
                guard case HubError.unknownModel(bad, ModelAliases.all.map(\.name)) = error else { return XCTFail("\(bad): \(error)") }
            }
        }
        XCTAssertEqual(HubError.unknownModel(name: "x", knownNames: RepositoryAliases.clipInterrogator.names).description,
                       "'x' is not an existing directory, a Hugging Face repository id (org/name) or a known model name ("
                       + "ViT-L-14/openai, ViT-B-32/openai, ViT-B-16/openai, ViT-L-14-336/openai, ViT-H-14/laion2b_s32b_b79k, "
                       + "ViT-bigG-14/laion2b_s39b_b160k, blip-base, blip-large)")
    }

    func testReferenceNameOfASnapshotNamesItsLabelCaches() throws {
        let temporary = try temporaryFolder(), cacheRoot = temporary.appendingPathComponent("hub-cache")
        let resolver = resolver(cacheRoot: cacheRoot)
        let directory = temporary.appendingPathComponent("my-model")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        XCTAssertNil(try resolver.resolve(directory.path, files: .clip).referenceName)

        // A snapshot directory of the cache knows its repository, hence its reference name.
        let snapshot = cacheRoot.appendingPathComponent("models--openai--clip-vit-large-patch14/snapshots/abc")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        let fromSnapshot = try resolver.resolve(snapshot.path, files: .clip)
        XCTAssertEqual(fromSnapshot.referenceName, "ViT-L-14/openai")
        XCTAssertEqual(try fromSnapshot.labelCacheName(), "ViT-L-14/openai", "reference caches interchange")

        // A repository outside the table files its caches under its id.
        let other = cacheRoot.appendingPathComponent("models--some-org--my-clip/snapshots/abc")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        XCTAssertEqual(try resolver.resolve(other.path, files: .clip).labelCacheName(), "some-org/my-clip")
    }

    func testCachedSnapshotResolvesByReferenceName() throws {
        let cacheRoot = try temporaryFolder()
        let snapshot = cacheRoot.appendingPathComponent("models--Salesforce--blip-image-captioning-large/snapshots/main")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        for name in ["config.json", "vocab.txt", "model.safetensors"] {
            try Data().write(to: snapshot.appendingPathComponent(name))
        }
        let resolved = try resolver(cacheRoot: cacheRoot).resolve("blip-large", files: .blip)
        XCTAssertEqual(resolved.source, .cache)
        XCTAssertEqual(resolved.directory.path, snapshot.path)
        XCTAssertEqual(resolved.referenceName, "blip-large")
    }

    func testLocalCheckpointsOfTheSameFolderNameGetTheirOwnLabelCaches() throws {
        let temporary = try temporaryFolder()
        let resolver = resolver(cacheRoot: temporary)
        func checkpoint(_ parent: String, weights: [UInt8]) throws -> String {
            let directory = temporary.appendingPathComponent(parent).appendingPathComponent("my-clip")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: directory.appendingPathComponent("config.json"))
            try Data(weights).write(to: directory.appendingPathComponent("model.safetensors"))
            return try resolver.resolve(directory.path, files: .clip).labelCacheName()
        }
        var random = SplitMix64(seed: 7)
        let weights = (0..<3_000_000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        var retrained = weights
        retrained[1_500_000] ^= 1   // a byte in one of the sampled stretches (retraining changes them all)
        let name = try checkpoint("a", weights: weights)
        XCTAssertTrue(name.hasPrefix("my-clip-") && name.count == "my-clip-".count + 12, name)
        XCTAssertEqual(try checkpoint("b", weights: weights), name, "a copy elsewhere shares the caches")
        XCTAssertNotEqual(try checkpoint("c", weights: retrained), name)
        XCTAssertNotEqual(try checkpoint("d", weights: Array(weights.dropLast())), name)
    }

    /// The file sets name what the loaders read: the demo checkpoints, complete
    /// Hugging Face folders, satisfy them, and lack nothing else the sets require.
    func testFileSetsMatchCheckpointFolders() {
        XCTAssertEqual(HubFileSet.clip.missingFiles(in: try DemoModel.clipDirectory), [])
        XCTAssertEqual(HubFileSet.blip.missingFiles(in: try DemoModel.captionDirectory), [])
        XCTAssertEqual(HubFileSet.clip.missingFiles(in: try DemoModel.captionDirectory), ["vocab.json", "merges.txt"])
        XCTAssertEqual(HubFileSet.blip.missingFiles(in: try DemoModel.clipDirectory), ["vocab.txt"])
    }
}
