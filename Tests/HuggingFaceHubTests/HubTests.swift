@testable import HuggingFaceHub
import Foundation
import XCTest

/// Model resolution and download against a loopback imitation of the hub
/// (``FakeHub``); no test reaches the real hub or the user's cache.
final class HubTests: XCTestCase {
    private var temporary: URL!

    override func setUpWithError() throws {
        temporary = FileManager.default.temporaryDirectory.appendingPathComponent("HubTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporary)
    }

    private var cacheRoot: URL { temporary.appendingPathComponent("hub-cache", isDirectory: true) }

    /// A CLIP-like repository: small JSON/text files and an LFS `model.safetensors`.
    private static func clipFiles(weights: Int = 200_000) -> [String: FakeHub.File] {
        [
            "config.json": .init(content: Array(#"{"model_type": "clip"}"#.utf8), lfs: false),
            "vocab.json": .init(content: Array(#"{"a": 0}"#.utf8), lfs: false),
            "merges.txt": .init(content: Array("#version: 0.2\na b\n".utf8), lfs: false),
            "preprocessor_config.json": .init(content: Array(#"{"crop_size": 224}"#.utf8), lfs: false),
            "tokenizer_config.json": .init(content: Array("{}".utf8), lfs: false),
            "model.safetensors": .init(content: hubTestBytes(weights, seed: 7), lfs: true),
        ]
    }

    /// An environment whose endpoint refuses connections, to prove no network is used.
    private func unreachableEnvironment(offline: Bool = false) throws -> HubEnvironment {
        let closed = try HubTestServer { _ in HubTestResponse(status: 500) }
        let endpoint = closed.baseURL
        closed.stop()
        return HubEnvironment(endpoint: endpoint, cacheDirectory: cacheRoot, offline: offline)
    }

    /// One alias, as an application would supply it.
    private static let aliases = RepositoryAliases(names: ["ViT-L-14/openai"]) {
        $0 == "ViT-L-14/openai" ? "openai/clip-vit-large-patch14" : nil
    }

    private var fastOptions: HubDownloadOptions {
        var options = HubDownloadOptions()
        options.retryDelay = 0
        options.timeout = 10
        return options
    }

    /// Asserts the cache holds `fake`'s files under the hub's layout and returns the snapshot.
    @discardableResult
    private func assertLayout(_ fake: FakeHub, files names: [String], file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let repo = cacheRoot.appendingPathComponent("models--test-org--test-model")
        let ref = try String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8)
        XCTAssertEqual(ref, fake.commit, "refs/main", file: file, line: line)
        let snapshot = repo.appendingPathComponent("snapshots/\(fake.commit)")
        for name in names {
            let pointer = snapshot.appendingPathComponent(name).path
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: pointer)
            XCTAssertEqual(target, "../../blobs/\(fake.etag(name))", "link of \(name)", file: file, line: line)
            let blob = repo.appendingPathComponent("blobs/\(fake.etag(name))")
            XCTAssertEqual(try Array(Data(contentsOf: blob)), fake.files[name]!.content, "blob of \(name)", file: file, line: line)
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pointer))), fake.files[name]!.content, file: file, line: line)
        }
        let blobs = try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path)
        XCTAssertFalse(blobs.contains { $0.hasSuffix(".incomplete") }, "leftover partial files: \(blobs)", file: file, line: line)
        return snapshot
    }

    // MARK: Names and environment

    func testRepositoryIDsAndAliases() throws {
        XCTAssertEqual(try ModelResolver.repository(for: "ViT-L-14/openai", aliases: Self.aliases), "openai/clip-vit-large-patch14")
        XCTAssertEqual(try ModelResolver.repository(for: "some-org/some.model_1"), "some-org/some.model_1")
        XCTAssertEqual(try ModelResolver.repository(for: "some-org/some.model_1", aliases: Self.aliases), "some-org/some.model_1")
        for bad in ["no-slash", "a/b/c", "a--b/c", "../x", "a/", "/b", "org/na me"] {
            XCTAssertThrowsError(try ModelResolver.repository(for: bad), bad) { error in
                guard case HubError.unknownModel(bad, []) = error else { return XCTFail("\(bad): \(error)") }
                XCTAssertEqual(error.localizedDescription,
                               "'\(bad)' is not an existing directory or a Hugging Face repository id (org/name)")
            }
        }
        XCTAssertThrowsError(try ModelResolver.repository(for: "no-slash", aliases: Self.aliases)) { error in
            XCTAssertEqual(error.localizedDescription, "'no-slash' is not an existing directory, a Hugging Face repository id "
                           + "(org/name) or a known model name (ViT-L-14/openai)")
        }
    }

    func testEnvironmentFromVariables() throws {
        let home = temporary.path
        var environment = try HubEnvironment(variables: ["HOME": home])
        XCTAssertEqual(environment.endpoint.absoluteString, "https://huggingface.co")
        XCTAssertEqual(environment.cacheDirectory.path, home + "/.cache/huggingface/hub")
        XCTAssertNil(environment.token)
        XCTAssertFalse(environment.offline)

        environment = try HubEnvironment(variables: ["HOME": home, "XDG_CACHE_HOME": "/x/cache"])
        XCTAssertEqual(environment.cacheDirectory.path, "/x/cache/huggingface/hub")
        environment = try HubEnvironment(variables: ["HOME": home, "HF_HOME": "~/hf", "XDG_CACHE_HOME": "/x/cache"])
        XCTAssertEqual(environment.cacheDirectory.path, home + "/hf/hub")
        environment = try HubEnvironment(variables: ["HOME": home, "HF_HOME": "/hf", "HF_HUB_CACHE": "/hubcache"])
        XCTAssertEqual(environment.cacheDirectory.path, "/hubcache")

        environment = try HubEnvironment(variables: ["HOME": home, "HF_ENDPOINT": "http://mirror.local:8080/", "HF_TOKEN": " hf_abc\n",
                                                     "HF_HUB_OFFLINE": "yes"])
        XCTAssertEqual(environment.endpoint.absoluteString, "http://mirror.local:8080")
        XCTAssertEqual(environment.token, "hf_abc")
        XCTAssertTrue(environment.offline)
        XCTAssertEqual(environment.offlineReason, "HF_HUB_OFFLINE=yes", "errors name the setting that made it offline")
        XCTAssertTrue(try HubEnvironment(variables: ["HOME": home, "TRANSFORMERS_OFFLINE": "1"]).offline)
        XCTAssertEqual(try HubEnvironment(variables: ["HOME": home, "TRANSFORMERS_OFFLINE": "1"]).offlineReason, "TRANSFORMERS_OFFLINE=1")
        XCTAssertFalse(try HubEnvironment(variables: ["HOME": home, "HF_HUB_OFFLINE": "0"]).offline)

        // The token `hf auth login` saves in $HF_HOME/token.
        let hfHome = temporary.appendingPathComponent("hfhome")
        try FileManager.default.createDirectory(at: hfHome, withIntermediateDirectories: true)
        try "hf_saved\n".write(to: hfHome.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try HubEnvironment(variables: ["HOME": home, "HF_HOME": hfHome.path]).token, "hf_saved")
        XCTAssertEqual(try HubEnvironment(variables: ["HOME": home, "HF_HOME": hfHome.path, "HF_TOKEN": "hf_env"]).token, "hf_env")

        XCTAssertThrowsError(try HubEnvironment(variables: ["HOME": home, "HF_ENDPOINT": "ftp://x"])) { error in
            guard case HubError.invalidEndpoint("ftp://x") = error else { return XCTFail("\(error)") }
        }
    }

    // MARK: Local sources

    func testExistingDirectoryIsUsedAsIs() throws {
        let directory = temporary.appendingPathComponent("my-model")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let resolver = ModelResolver(environment: try unreachableEnvironment())
        let resolved = try resolver.resolve(directory.path, files: .clip)
        XCTAssertEqual(resolved.source, .localDirectory)
        XCTAssertEqual(resolved.directory.path, directory.path)
        XCTAssertNil(resolved.repository)

        // A snapshot directory of the cache knows its repository.
        let snapshot = cacheRoot.appendingPathComponent("models--openai--clip-vit-large-patch14/snapshots/abc")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        let fromSnapshot = try resolver.resolve(snapshot.path, files: .clip)
        XCTAssertEqual(fromSnapshot.repository, "openai/clip-vit-large-patch14")
        XCTAssertEqual(fromSnapshot.commit, "abc")
    }

    func testPrePopulatedCacheIsUsedWithoutNetwork() throws {
        // Lay out a cache by hand the way huggingface_hub does.
        let repo = cacheRoot.appendingPathComponent("models--openai--clip-vit-large-patch14")
        let commit = String(repeating: "a", count: 40)
        let snapshot = repo.appendingPathComponent("snapshots/\(commit)")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("blobs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try commit.write(to: repo.appendingPathComponent("refs/main"), atomically: true, encoding: .utf8)
        for (index, name) in ["config.json", "vocab.json", "merges.txt", "model.safetensors"].enumerated() {
            let etag = String(repeating: String(index), count: 40)
            try Data(name.utf8).write(to: repo.appendingPathComponent("blobs/\(etag)"))
            try FileManager.default.createSymbolicLink(atPath: snapshot.appendingPathComponent(name).path,
                                                       withDestinationPath: "../../blobs/\(etag)")
        }
        for offline in [false, true] {
            let resolver = ModelResolver(environment: try unreachableEnvironment(offline: offline), aliases: Self.aliases)
            let resolved = try resolver.resolve("ViT-L-14/openai", files: .clip)
            XCTAssertEqual(resolved.source, .cache)
            XCTAssertEqual(resolved.directory.path, snapshot.path)
            XCTAssertEqual(resolved.commit, commit)
            XCTAssertEqual(resolved.repository, "openai/clip-vit-large-patch14")
            XCTAssertEqual(try String(contentsOf: resolved.directory.appendingPathComponent("vocab.json"), encoding: .utf8), "vocab.json")
        }

        // A dangling link means the file is missing: the cache no longer serves, offline says what is missing.
        try FileManager.default.removeItem(at: repo.appendingPathComponent("blobs/" + String(repeating: "1", count: 40)))
        let offline = ModelResolver(environment: try unreachableEnvironment(offline: true))
        XCTAssertThrowsError(try offline.resolve("openai/clip-vit-large-patch14", files: .clip)) { error in
            guard case let HubError.offline(repository, missing, directory, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(repository, "openai/clip-vit-large-patch14")
            XCTAssertEqual(missing, ["vocab.json"])
            XCTAssertEqual(directory, snapshot.path)
        }
    }

    func testShardedWeightsInCache() throws {
        let snapshot = cacheRoot.appendingPathComponent("models--org--big/snapshots/main")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        for name in ["config.json", "vocab.json", "merges.txt", "model-00001-of-00002.safetensors"] {
            try Data().write(to: snapshot.appendingPathComponent(name))
        }
        let index = #"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: snapshot.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertEqual(HubFileSet.clip.missingFiles(in: snapshot), ["model-00002-of-00002.safetensors"])
        let resolver = ModelResolver(environment: try unreachableEnvironment(offline: true))
        XCTAssertThrowsError(try resolver.resolve("org/big", files: .clip)) { error in
            guard case let HubError.offline(_, missing, directory, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(missing, ["model-00002-of-00002.safetensors"])
            XCTAssertEqual(directory, snapshot.path)
        }
        try Data().write(to: snapshot.appendingPathComponent("model-00002-of-00002.safetensors"))
        XCTAssertEqual(try resolver.resolve("org/big", files: .clip).source, .cache)
    }

    func testOfflineWithoutCacheNamesMissingFilesAndDirectory() throws {
        let fake = try FakeHub(files: Self.clipFiles())
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot, offline: true))
        XCTAssertThrowsError(try resolver.resolve("test-org/test-model", files: .clip)) { error in
            guard case let HubError.offline(repository, missing, directory, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(repository, "test-org/test-model")
            XCTAssertEqual(missing, ["config.json", "vocab.json", "merges.txt", "model.safetensors"])
            XCTAssertEqual(directory, cacheRoot.path + "/models--test-org--test-model/snapshots/main")
            XCTAssertTrue(error.localizedDescription.contains("model.safetensors"))
        }
        XCTAssertTrue(fake.hubRequests.isEmpty && fake.cdnRequests.isEmpty, "offline mode made requests")

        // Offline from the process-style variables too.
        let fromVariables = try HubEnvironment(variables: ["HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": cacheRoot.path,
                                                           "HF_ENDPOINT": fake.endpoint.absoluteString, "HOME": temporary.path])
        XCTAssertThrowsError(try ModelResolver(environment: fromVariables).resolve("test-org/test-model", files: .clip))
        XCTAssertTrue(fake.hubRequests.isEmpty && fake.cdnRequests.isEmpty, "offline mode made requests")
    }

    // MARK: Downloads

    func testDownloadFollowsRedirectAndBuildsCacheLayout() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(requiredToken: "hf_secret"))
        defer { fake.stop() }
        let reports = ProgressLog()
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot, token: "hf_secret"), options: fastOptions,
                                     progress: { reports.append($0) })
        let resolved = try resolver.resolve("test-org/test-model", files: .clip)
        XCTAssertEqual(resolved.source, .download)
        XCTAssertEqual(resolved.commit, fake.commit)
        XCTAssertEqual(resolved.repository, "test-org/test-model")
        let snapshot = try assertLayout(fake, files: ["config.json", "vocab.json", "merges.txt", "preprocessor_config.json",
                                                      "tokenizer_config.json", "model.safetensors"])
        XCTAssertEqual(resolved.directory.path, snapshot.path)
        XCTAssertTrue(HubFileSet.clip.missingFiles(in: resolved.directory).isEmpty)

        // The optional file the repository lacks is skipped and remembered as the hub does.
        XCTAssertFalse(FileManager.default.fileExists(atPath: snapshot.appendingPathComponent("special_tokens_map.json").path))
        XCTAssertTrue(FileManager.default.fileExists(
            atPath: cacheRoot.path + "/models--test-org--test-model/.no_exist/\(fake.commit)/special_tokens_map.json"))

        // The LFS file came from the CDN after the hub's 302, without the token; hub requests carried it.
        let cdnGets = fake.cdnRequests.filter { $0.method == "GET" }
        XCTAssertEqual(cdnGets.count, 1)
        XCTAssertNil(cdnGets.first?.header("authorization"))
        XCTAssertTrue(cdnGets.first?.path.contains("signature=xyz") ?? false)
        XCTAssertFalse(fake.hubRequests.isEmpty)
        XCTAssertTrue(fake.hubRequests.allSatisfy { $0.header("authorization") == "Bearer hf_secret" })
        XCTAssertTrue(fake.hubRequests.allSatisfy { $0.header("accept-encoding") == "identity" })
        // Files after the first are pinned to the commit the first resolved to.
        let heads = fake.hubRequests.filter { $0.method == "HEAD" }.map(\.path)
        XCTAssertTrue(heads.first?.contains("/resolve/main/config.json") ?? false, "\(heads)")
        XCTAssertTrue(heads.dropFirst().allSatisfy { $0.contains("/resolve/\(fake.commit)/") }, "\(heads)")

        // Progress reached the whole weight file.
        let weights = reports.all.filter { $0.file == "model.safetensors" }
        XCTAssertEqual(weights.last, HubDownloadProgress(repository: "test-org/test-model", file: "model.safetensors",
                                                         completedBytes: 200_000, totalBytes: 200_000))
        XCTAssertEqual(weights.last?.fraction, 1)

        // Now cached: resolves with the servers gone, by repository id.
        fake.stop()
        let again = try ModelResolver(environment: fake.environment(cache: cacheRoot)).resolve("test-org/test-model", files: .clip)
        XCTAssertEqual(again.source, .cache)
        XCTAssertEqual(again.directory.path, snapshot.path)
    }

    func testUserAgentNamesTheApplication() throws {
        let fake = try FakeHub(files: Self.clipFiles(weights: 1_000))
        defer { fake.stop() }
        _ = try ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
            .resolve("test-org/test-model", files: .clip)
        XCTAssertTrue(fake.hubRequests.allSatisfy { $0.header("user-agent") == HubEnvironment.defaultUserAgent })
        let variables = ["HF_ENDPOINT": fake.endpoint.absoluteString, "HOME": temporary.path,
                         "HF_HUB_CACHE": temporary.appendingPathComponent("second-cache").path]
        let before = fake.hubRequests.count
        _ = try ModelResolver(environment: HubEnvironment(variables: variables, userAgent: "my-app/1.0"), options: fastOptions)
            .resolve("test-org/test-model", files: .clip)
        XCTAssertGreaterThan(fake.hubRequests.count, before)
        XCTAssertTrue(fake.hubRequests.dropFirst(before).allSatisfy { $0.header("user-agent") == "my-app/1.0" })
        XCTAssertTrue(fake.cdnRequests.allSatisfy { $0.header("user-agent") != nil })
    }

    func testRedirectToSecondPathOnSameHostKeepsToken() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(requiredToken: "t", lfsOnSameHost: true))
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot, token: "t"), options: fastOptions)
        XCTAssertEqual(try resolver.resolve("test-org/test-model", files: .clip).source, .download)
        try assertLayout(fake, files: ["config.json", "model.safetensors"])
        let second = fake.hubRequests.filter { $0.path.hasPrefix("/lfs-second-path/") }
        XCTAssertEqual(second.count, 1)
        XCTAssertEqual(second.first?.header("authorization"), "Bearer t")
        XCTAssertTrue(fake.cdnRequests.isEmpty)
    }

    func testRenamedRepositoryRedirectIsFollowed() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(requiredToken: "t", formerName: "old-org/old-model"))
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot, token: "t"), options: fastOptions)
        let resolved = try resolver.resolve("old-org/old-model", files: .clip)
        XCTAssertEqual(resolved.repository, "old-org/old-model")
        XCTAssertEqual(resolved.directory.path, cacheRoot.path + "/models--old-org--old-model/snapshots/\(fake.commit)")
        XCTAssertEqual(try Array(Data(contentsOf: resolved.directory.appendingPathComponent("model.safetensors"))),
                       fake.files["model.safetensors"]!.content)
        // Same-host redirects keep the token (they stay on the hub).
        XCTAssertTrue(fake.hubRequests.allSatisfy { $0.header("authorization") == "Bearer t" })
        XCTAssertTrue(fake.hubRequests.contains { $0.method == "HEAD" && $0.path.hasPrefix("/test-org/test-model/resolve/") })
    }

    func testMetadataHelpers() {
        XCTAssertEqual(HubDownloader.normalizeETag("W/\"abc\""), "abc")
        XCTAssertEqual(HubDownloader.normalizeETag("\"abc\""), "abc")
        let sha = String(repeating: "ab", count: 32), gitSHA = String(repeating: "c", count: 40)
        XCTAssertEqual(HubFileMetadata(commit: "c", etag: sha, size: 1).sha256, sha)
        // A git SHA-1 (small files) is not a content hash of the file and is not checked as one.
        XCTAssertNil(HubFileMetadata(commit: "c", etag: gitSHA, size: 1).sha256)
        XCTAssertNil(HubFileMetadata(commit: "c", etag: sha.uppercased(), size: 1).sha256)

        let environment = HubEnvironment(endpoint: URL(string: "http://127.0.0.1:8080")!, cacheDirectory: temporary)
        let downloader = HubDownloader(environment: environment, options: HubDownloadOptions(), progress: nil)
        XCTAssertEqual(downloader.resolveURL("org/name", revision: "refs/pr/1", file: "sub dir/a.json").absoluteString,
                       "http://127.0.0.1:8080/org/name/resolve/refs%2Fpr%2F1/sub%20dir/a.json")
        XCTAssertTrue(downloader.isHubOrigin(URL(string: "http://127.0.0.1:8080/x")!))
        XCTAssertTrue(downloader.isHubOrigin(URL(string: "https://huggingface.co/x")!))
        XCTAssertTrue(downloader.isHubOrigin(URL(string: "https://HF.co:443/x")!))
        XCTAssertFalse(downloader.isHubOrigin(URL(string: "http://127.0.0.1:8081/x")!))
        XCTAssertFalse(downloader.isHubOrigin(URL(string: "https://cas-bridge.xethub.hf.co/x")!))
        XCTAssertFalse(downloader.isHubOrigin(URL(string: "http://huggingface.co/x")!))
    }

    func testResumesWithRangeAfterCutConnection() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(cutFirstDownload: ["model.safetensors": 70_000]))
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
        XCTAssertEqual(try resolver.resolve("test-org/test-model", files: .clip).source, .download)
        try assertLayout(fake, files: ["model.safetensors", "config.json"])
        let gets = fake.contentRequests("model.safetensors")
        XCTAssertEqual(gets.count, 2)
        XCTAssertNil(gets[0].header("range"))
        XCTAssertEqual(gets[1].header("range"), "bytes=70000-")
    }

    func testResumesAPartialFileLeftByAnEarlierRun() throws {
        // The first transfer is cut and the resumption fails (503): the run gives up.
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(cutFirstDownload: ["model.safetensors": 50_000], rangeStatus: 503))
        defer { fake.stop() }
        var options = fastOptions
        options.maxRetries = 0
        let blobs = cacheRoot.appendingPathComponent("models--test-org--test-model/blobs")
        let partial = blobs.appendingPathComponent(fake.etag("model.safetensors") + ".incomplete")
        XCTAssertThrowsError(try ModelResolver(environment: fake.environment(cache: cacheRoot), options: options)
            .resolve("test-org/test-model", files: .clip)) { error in
            guard case HubError.httpStatus(_, 503, _) = error else { return XCTFail("\(error)") }
        }
        // The cut transfer is kept for the next run, and nothing else of it is in place.
        XCTAssertEqual(try Data(contentsOf: partial).count, 50_000)
        XCTAssertFalse(FileManager.default.fileExists(atPath: blobs.appendingPathComponent(fake.etag("model.safetensors")).path))

        fake.behaviour.rangeStatus = nil
        let resolved = try ModelResolver(environment: fake.environment(cache: cacheRoot), options: options)
            .resolve("test-org/test-model", files: .clip)
        XCTAssertEqual(resolved.source, .download)
        try assertLayout(fake, files: ["model.safetensors"])
        XCTAssertEqual(fake.contentRequests("model.safetensors").last?.header("range"), "bytes=50000-")
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
    }

    func testServerIgnoringRangeRestartsFromZero() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(cutFirstDownload: ["model.safetensors": 60_000], ignoreRange: true))
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
        XCTAssertEqual(try resolver.resolve("test-org/test-model", files: .clip).source, .download)
        try assertLayout(fake, files: ["model.safetensors"])
        let gets = fake.contentRequests("model.safetensors")
        XCTAssertEqual(gets.count, 2)
        XCTAssertEqual(gets[1].header("range"), "bytes=60000-")
    }

    func testGivesUpAfterRetriesWhenEveryTransferIsCut() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(cutEveryDownload: ["model.safetensors": 0]))
        defer { fake.stop() }
        var options = fastOptions
        options.maxRetries = 2
        XCTAssertThrowsError(try ModelResolver(environment: fake.environment(cache: cacheRoot), options: options)
            .resolve("test-org/test-model", files: .clip)) { error in
            guard case HubError.network = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(fake.contentRequests("model.safetensors").count, 3)
    }

    func testTokenRequiredThenAccepted() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(requiredToken: "hf_right"))
        defer { fake.stop() }
        func environment(_ token: String?) throws -> HubEnvironment {
            var variables = ["HF_ENDPOINT": fake.endpoint.absoluteString, "HF_HUB_CACHE": cacheRoot.path, "HOME": temporary.path]
            variables["HF_TOKEN"] = token
            return try HubEnvironment(variables: variables)
        }
        XCTAssertThrowsError(try ModelResolver(environment: environment(nil), options: fastOptions)
            .resolve("test-org/test-model", files: .clip)) { error in
            guard case HubError.tokenRequired("test-org/test-model", "config.json", 401) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(error.localizedDescription.contains("HF_TOKEN"))
        }
        XCTAssertThrowsError(try ModelResolver(environment: environment("hf_wrong"), options: fastOptions)
            .resolve("test-org/test-model", files: .clip)) { error in
            guard case HubError.tokenRejected("test-org/test-model", "config.json", 401) = error else { return XCTFail("\(error)") }
        }
        let resolved = try ModelResolver(environment: environment("hf_right"), options: fastOptions)
            .resolve("test-org/test-model", files: .clip)
        XCTAssertEqual(resolved.source, .download)
        try assertLayout(fake, files: ["config.json", "model.safetensors"])
        XCTAssertTrue(fake.cdnRequests.allSatisfy { $0.header("authorization") == nil })
    }

    func testMissingFiles() throws {
        var files = Self.clipFiles()
        files["vocab.json"] = nil
        let fake = try FakeHub(files: files)
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
        XCTAssertThrowsError(try resolver.resolve("test-org/test-model", files: .clip)) { error in
            guard case HubError.fileNotFound("test-org/test-model", "vocab.json", _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(error.localizedDescription.contains("vocab.json"))
        }
        XCTAssertThrowsError(try resolver.resolve("test-org/other", files: .clip)) { error in
            guard case HubError.repositoryNotFound("test-org/other") = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try resolver.resolve("test-org/test-model", files: .clip, revision: "v9")) { error in
            guard case HubError.revisionNotFound("test-org/test-model", "v9") = error else { return XCTFail("\(error)") }
        }
        // Without the weights at all.
        files = Self.clipFiles()
        files["model.safetensors"] = nil
        let noWeights = try FakeHub(files: files)
        defer { noWeights.stop() }
        XCTAssertThrowsError(try ModelResolver(environment: noWeights.environment(cache: temporary.appendingPathComponent("c2")),
                                               options: fastOptions).resolve("test-org/test-model", files: .clip)) { error in
            guard case let HubError.fileNotFound(_, file, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.contains("model.safetensors"))
        }
    }

    func testChecksumMismatchLeavesNothing() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(corrupt: ["model.safetensors"]))
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
        XCTAssertThrowsError(try resolver.resolve("test-org/test-model", files: .clip)) { error in
            guard case let HubError.checksumMismatch(repository, file, expected, actual) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(repository, "test-org/test-model")
            XCTAssertEqual(file, "model.safetensors")
            XCTAssertEqual(expected, fake.etag("model.safetensors"))
            XCTAssertNotEqual(actual, expected)
        }
        try assertNothingCached(fake, "model.safetensors")
    }

    func testSizeMismatchLeavesNothing() throws {
        let fake = try FakeHub(files: Self.clipFiles(), behaviour: .init(announcedSize: ["model.safetensors": 150_000]))
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
        XCTAssertThrowsError(try resolver.resolve("test-org/test-model", files: .clip)) { error in
            guard case HubError.sizeMismatch("test-org/test-model", "model.safetensors", 150_000, _) = error else { return XCTFail("\(error)") }
        }
        try assertNothingCached(fake, "model.safetensors")
    }

    private func assertNothingCached(_ fake: FakeHub, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let repo = cacheRoot.appendingPathComponent("models--test-org--test-model")
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path)) ?? []
        XCTAssertFalse(blobs.contains { $0.hasPrefix(fake.etag(name)) }, "left in blobs/: \(blobs)", file: file, line: line)
        XCTAssertFalse(blobs.contains { $0.hasSuffix(".incomplete") || $0.hasSuffix(".tmp") }, "\(blobs)", file: file, line: line)
        XCTAssertNil(try? FileManager.default.destinationOfSymbolicLink(
            atPath: repo.appendingPathComponent("snapshots/\(fake.commit)/\(name)").path), file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.appendingPathComponent("refs/main").path),
                       "refs/main written for an incomplete snapshot", file: file, line: line)
        XCTAssertNil(HubCache(root: cacheRoot).completeSnapshot("test-org/test-model", files: .clip), file: file, line: line)
    }

    func testShardedWeightsDownload() throws {
        var files = Self.clipFiles()
        files["model.safetensors"] = nil
        files["model-00001-of-00002.safetensors"] = .init(content: hubTestBytes(40_000, seed: 1), lfs: true)
        files["model-00002-of-00002.safetensors"] = .init(content: hubTestBytes(30_000, seed: 2), lfs: true)
        files["model.safetensors.index.json"] = .init(content: Array(#"""
            {"metadata": {"total_size": 70000}, "weight_map": {"a.weight": "model-00002-of-00002.safetensors",
             "b.weight": "model-00001-of-00002.safetensors", "c.weight": "model-00001-of-00002.safetensors"}}
            """#.utf8), lfs: false)
        let fake = try FakeHub(files: files)
        defer { fake.stop() }
        let resolved = try ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
            .resolve("test-org/test-model", files: .clip)
        try assertLayout(fake, files: ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        XCTAssertTrue(HubFileSet.clip.missingFiles(in: resolved.directory).isEmpty)
        fake.stop()
        XCTAssertEqual(try ModelResolver(environment: fake.environment(cache: cacheRoot, offline: true))
            .resolve("test-org/test-model", files: .clip).source, .cache)
    }

    func testPartialSnapshotIsCompletedFromTheHub() throws {
        let fake = try FakeHub(files: Self.clipFiles())
        defer { fake.stop() }
        let resolver = ModelResolver(environment: fake.environment(cache: cacheRoot), options: fastOptions)
        _ = try resolver.resolve("test-org/test-model", files: .clip)
        // Lose one file's link: the next resolution fetches only that one (its blob is still there).
        let snapshot = cacheRoot.appendingPathComponent("models--test-org--test-model/snapshots/\(fake.commit)")
        try FileManager.default.removeItem(at: snapshot.appendingPathComponent("merges.txt"))
        let before = fake.hubRequests.count + fake.cdnRequests.count
        XCTAssertEqual(try resolver.resolve("test-org/test-model", files: .clip).source, .download)
        try assertLayout(fake, files: ["merges.txt", "model.safetensors"])
        let after = fake.hubRequests.count + fake.cdnRequests.count
        // One HEAD for the first entry (to learn the commit), one for merges.txt, the optional
        // files again, and no content GET at all.
        XCTAssertEqual(fake.hubRequests.dropFirst(before).filter { $0.method == "GET" }.count, 0)
        XCTAssertEqual(fake.cdnRequests.count, 1)
        XCTAssertLessThan(after - before, 6)
    }
}

/// Collects progress reports from any thread.
private final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [HubDownloadProgress] = []

    func append(_ report: HubDownloadProgress) {
        lock.lock()
        reports.append(report)
        lock.unlock()
    }

    var all: [HubDownloadProgress] {
        lock.lock()
        defer { lock.unlock() }
        return reports
    }
}

extension HubFileSet {
    /// A CLIP checkpoint's files, as an application would list them: three required
    /// files, three optional ones and the weights.
    static let clip = HubFileSet(["config.json", "vocab.json", "merges.txt"].map { .required($0) }
        + ["preprocessor_config.json", "tokenizer_config.json", "special_tokens_map.json"].map { .optional($0) }
        + [.safetensors(stem: "model")])
}
