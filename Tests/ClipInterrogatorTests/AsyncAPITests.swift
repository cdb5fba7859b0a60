import Foundation
import NeuralCore
import NeuralModels
import Synchronization
@testable import ClipInterrogator
import TestSupport
import XCTest

/// Records a call's progress and, at the first event `pause` matches, holds the
/// working thread until the test has cancelled the task, so the test knows
/// exactly which step the cancellation arrived at.
final class PausingRecorder: Sendable {
    private let events = Mutex<[InterrogatorProgress]>([])
    private let paused = Atomic<Bool>(false)
    private let resume = DispatchSemaphore(value: 0)
    private let pause: @Sendable (InterrogatorProgress) -> Bool

    init(pauseAt pause: @escaping @Sendable (InterrogatorProgress) -> Bool = { _ in false }) {
        self.pause = pause
    }

    /// The progress receiver.
    func record(_ event: InterrogatorProgress) {
        events.withLock { $0.append(event) }
        if pause(event), !paused.exchange(true, ordering: .relaxed) { resume.wait() }
    }

    var recorded: [InterrogatorProgress] { events.withLock { $0 } }

    /// Waits until the work is held at the pause point.
    func waitUntilPaused() async throws {
        let deadline = Date().addingTimeInterval(120)
        while !paused.load(ordering: .relaxed) {
            guard Date() < deadline else { throw CancellationError() }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    /// Lets the held work go on.
    func release() { resume.signal() }
}

/// A caption model that counts its calls.
final class CountingCaptioner: ImageCaptioning {
    let calls = Atomic<Int>(0)
    func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> String {
        calls.add(1, ordering: .relaxed)
        try progress?(1, maxTokens)
        return "a tiny random caption"
    }
}

/// The async API: cancellation between steps, per-call progress, conveniences,
/// every mode from one caption and embedding, Codable results, readable errors.
final class AsyncAPITests: XCTestCase {
    static var image: RGBImage { get throws { try ImageDecoder.decode(contentsOf: Fixtures.url("blip/image0.png")) } }

    static func chainSteps(_ events: [InterrogatorProgress]) -> Int {
        events.filter { if case .chainStep = $0 { true } else { false } }.count
    }

    /// Runs `work` with a recorder that pauses at the first event `pause` matches,
    /// cancels the task there, and returns what the recorder saw; the work must
    /// end in `CancellationError`.
    func cancelled(at pause: @escaping @Sendable (InterrogatorProgress) -> Bool,
                   _ work: @escaping @Sendable (PausingRecorder) async throws -> Void) async throws -> [InterrogatorProgress] {
        let recorder = PausingRecorder(pauseAt: pause)
        let task = Task { try await work(recorder) }
        try await recorder.waitUntilPaused()
        task.cancel()
        recorder.release()
        do {
            try await task.value
            XCTFail("the cancelled work finished")
        } catch is CancellationError {}
        return recorder.recorded
    }

    func testCancellingStopsABestModeChainWithinOneStep() async throws {
        let interrogator = try ChainSearchTests.makeInterrogator(reusePrefix: true, flavorCount: 300)
        let image = try Self.image
        let options = { var options = InterrogationOptions(); options.subject = "a tiny random caption"; return options }()

        // Left alone, the chain runs at least min_flavors steps.
        let whole = PausingRecorder()
        _ = try await interrogator.interrogate([image], mode: .best, options: options, progress: whole.record)
        XCTAssertGreaterThanOrEqual(Self.chainSteps(whole.recorded), options.minFlavors)

        // Cancelled while its first step is being reported, it takes no second step.
        let events = try await cancelled(at: { if case .chainStep = $0 { true } else { false } }) { recorder in
            _ = try await interrogator.interrogate([image], mode: .best, options: options, progress: recorder.record)
        }
        XCTAssertEqual(Self.chainSteps(events), 1, "stopped within the step the cancellation arrived in: \(events)")
    }

    func testCancellingStopsCaptionDecodingBetweenTokens() async throws {
        let clip = try CLIPEncoder(directory: Fixtures.url("interrogator/clip"))
        let blip = try BlipCaptioner(directory: Fixtures.url("blip/tiny-base"))
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.captionMaxLength = 12
        let interrogator = Interrogator(encoder: clip, captioner: blip, configuration: configuration)
        let image = try Self.image
        func tokens(_ events: [InterrogatorProgress]) -> Int {
            events.filter { if case .captioning = $0 { true } else { false } }.count
        }
        let whole = PausingRecorder()
        _ = try await interrogator.interrogate(image, mode: .caption, progress: whole.record)
        XCTAssertGreaterThan(tokens(whole.recorded), 1, "the caption takes several decoder steps")

        let events = try await cancelled(at: { if case .captioning = $0 { true } else { false } }) { recorder in
            _ = try await interrogator.interrogate(image, mode: .caption, progress: recorder.record)
        }
        XCTAssertEqual(tokens(events), 1, "no decoder step after the cancelled one: \(events)")
    }

    func testCancellingStopsLabelEmbeddingBetweenBatches() async throws {
        let clip = try CLIPEncoder(directory: Fixtures.url("interrogator/clip"))
        let flavors = try ReferenceLabels.list(.flavors)
        func list(_ name: String, _ count: Int) -> LabelSet.List { LabelSet.List(name: name, labels: Array(flavors.prefix(count))) }
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.labelSet = LabelSet(artists: list("a", 3), flavors: list("flavors", 3 * LabelTable.encodingBatch),
                                          mediums: list("m", 3), movements: list("v", 3), trendings: list("t", 3), negative: list("n", 3))
        let interrogator = Interrogator(encoder: clip, captioner: nil, configuration: configuration)
        let events = try await cancelled(at: { if case let .buildingLabelTable("flavors", done, _) = $0 { done > 0 } else { false } }) { recorder in
            try await interrogator.prepareLabelTables(progress: recorder.record)
        }
        let flavorReports = events.compactMap { event -> Int? in
            if case let .buildingLabelTable("flavors", done, _) = event { done } else { nil }
        }
        XCTAssertEqual(flavorReports, [0, LabelTable.encodingBatch], "stopped after the batch that saw the cancellation")

        // Not cancelled, the same call builds every table.
        let whole = PausingRecorder()
        try await interrogator.prepareLabelTables(progress: whole.record)
        XCTAssertEqual(try interrogator.labelTables().flavors.labels.count, 3 * LabelTable.encodingBatch)
    }

    func testEveryModeFromOneCaptionAndOneEmbedding() async throws {
        let captioner = CountingCaptioner()
        let base = try ChainSearchTests.makeInterrogator(reusePrefix: true, flavorCount: 300)
        let interrogator = Interrogator(encoder: base.encoder, captioner: captioner, configuration: base.configuration,
                                        tables: try base.labelTables())
        let image = try Self.image
        let modes: [InterrogationMode] = [.caption, .fast, .classic, .negative, .analyze, .best]
        let together = try await interrogator.interrogate([image], modes: modes)
        XCTAssertEqual(captioner.calls.load(ordering: .relaxed), 1, "one caption for every mode")
        XCTAssertEqual(together.map(\.mode), modes)
        for (mode, result) in zip(modes, together) {
            let alone = try await interrogator.interrogate([image], mode: mode)
            XCTAssertEqual(alone, result, "\(mode) as a call of its own")
        }
        XCTAssertEqual(captioner.calls.load(ordering: .relaxed), 1 + modes.count - 2, "one caption per call that needs one")
        // Stored features give the same results later.
        let features = try interrogator.features(of: [image])
        let stored = try JSONDecoder().decode(ImageFeatures.self, from: JSONEncoder().encode(features))
        XCTAssertEqual(try interrogator.interrogate(stored, mode: .fast), together[1])
        // The analysis is Codable with the rest of the result.
        let analysis = try XCTUnwrap(together[4].analysis)
        XCTAssertEqual(try JSONDecoder().decode(InterrogationResult.self, from: JSONEncoder().encode(together[4])).analysis, analysis)
    }

    func testFileURLAndSingleImageConveniences() async throws {
        let interrogator = try DemoModel.interrogator()
        let url = Fixtures.url("demo/heldout/00.png")
        let fromFile = try await interrogator.interrogate(contentsOf: url, mode: .fast)
        let fromImage = try await interrogator.interrogate(try ImageDecoder.decode(contentsOf: url), mode: .fast)
        XCTAssertEqual(fromFile, fromImage)
        let fromImages = try await interrogator.interrogate([ImageDecoder.decode(contentsOf: url)], mode: .fast)
        XCTAssertEqual(fromFile, fromImages)
        do {
            _ = try await interrogator.interrogate(contentsOf: URL(fileURLWithPath: "/nonexistent/photo.png"))
            XCTFail("a missing file is an error")
        } catch {
            XCTAssertEqual(error.localizedDescription, "image file not found: /nonexistent/photo.png")
        }
    }

    func testErrorsReadWellThroughLocalizedDescription() {
        let errors: [any Error] = [
            ImageDecodingError.fileNotFound(path: "/x.png"), InterrogatorError.noImages,
            LabelSet.LoadError.missingIndex(path: "/l/label-set.json"), LabelList.ReadError(path: "/l.txt"),
            InstalledData.NotFound(item: "the demo model", searched: ["/a", "/b"]),
            CheckpointError.missingFile(path: "/m/model.safetensors"),
            ImagePreprocessingError.badChannelStatistics,
        ]
        for error in errors {
            XCTAssertEqual(error.localizedDescription, String(describing: error))
            XCTAssertFalse(error.localizedDescription.contains("The operation could not be completed"))
        }
    }

    func testLabelCacheDefaultsToTheXDGCacheHome() {
        XCTAssertEqual(LabelEmbeddingCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"]).path,
                       "/x/cache/clip-interrogator-swift")
        XCTAssertEqual(LabelEmbeddingCache.defaultDirectory(environment: ["HOME": "/home/u"]).path,
                       "/home/u/.cache/clip-interrogator-swift")
        XCTAssertEqual(LabelEmbeddingCache.defaultDirectory(environment: ["HOME": "/home/u", "XDG_CACHE_HOME": ""]).path,
                       "/home/u/.cache/clip-interrogator-swift", "an empty variable is unset")
    }
}
