import Foundation
import HuggingFaceHub
import NeuralCore
import NeuralModels
@testable import ClipInterrogator
import TestSupport
import XCTest

/// Issue 13, the library's side: label files, caches, non-finite results and
/// resumed outputs. Hostile files are made here, at test time.
final class ReliabilityTests: TemporaryDirectoryTestCase {
    /// A copy of the demo label set in which `list` holds `text`.
    func labelSet(with text: String, in list: String) throws -> URL {
        let folder = work.appendingPathComponent("labels-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: DemoModel.labelDirectory, to: folder)
        try Data(text.utf8).write(to: folder.appendingPathComponent(list))
        return folder
    }

    /// What a callback saw, from any thread.
    final class Seen<T>: @unchecked Sendable {
        // @unchecked: `values` is only touched under `lock`.
        private let lock = NSLock()
        private var values: [T] = []
        func append(_ value: T) { lock.lock(); values.append(value); lock.unlock() }
        var all: [T] { lock.lock(); defer { lock.unlock() }; return values }
    }

    /// An interrogator of the tiny CLIP (and BLIP) over the demo label set.
    func interrogator(cache: URL? = nil, warnings: Seen<InterrogatorWarning>? = nil,
                      builds: Seen<String>? = nil) throws -> Interrogator {
        var configuration = InterrogatorConfiguration(encoderName: "tiny/random")
        configuration.labelSet = try LabelSet(directory: DemoModel.labelDirectory)
        configuration.cacheDirectory = cache
        configuration.warnings = { warning in warnings?.append(warning) }
        configuration.progress = { event in
            if case let .buildingLabelTable(name, done, total) = event, done == total { builds?.append(name) }
        }
        return try Interrogator.load(clipDirectory: Fixtures.url("interrogator/clip"), captionDirectory: Fixtures.url("blip/tiny-base"),
                                     configuration: configuration)
    }

    // MARK: Label lists

    /// A list without a label (empty, or blank lines only) is refused at load,
    /// naming the file: one rule for every mode (classic and best crashed on it).
    func testEmptyListInALabelSetIsATypedErrorNamingTheFile() throws {
        for text in ["", "\n  \n\t\n"] {
            let folder = try labelSet(with: text, in: "styles.txt")
            XCTAssertThrowsError(try LabelSet(directory: folder)) { error in
                XCTAssertEqual(error as? LabelSet.LoadError, .emptyList(path: folder.appendingPathComponent("styles.txt").path))
            }
        }
        // Blank lines among labels stay, as the reference keeps them (they count in its cache hash).
        let withBlank = try LabelSet(directory: try labelSet(with: "flat\n\nshaded\n", in: "styles.txt"))
        XCTAssertEqual(withBlank.trendings.labels, ["flat", "", "shaded"])
    }

    /// The demo's label caches were filed under the fixed name "demo", so a
    /// retrained demo reused stale embeddings; the name now carries the
    /// checkpoint's fingerprint.
    func testDemoCachesAreFiledUnderTheCheckpointsFingerprint() throws {
        let name = try DemoModel.configuration().encoderName
        XCTAssertEqual(name, "demo-" + (try ResolvedModel.fingerprint(of: DemoModel.clipDirectory)))
        XCTAssertEqual(name.count, "demo-".count + 12)
    }

    // MARK: Caches

    /// A user cache with the right hash but another embedding width (another model
    /// filed under the same name) is rebuilt, not trusted (it hit a precondition).
    func testCachedTableOfAnotherWidthIsRebuilt() throws {
        let labels = try LabelSet(directory: DemoModel.labelDirectory).mediums
        let cache = LabelEmbeddingCache(directory: work, modelName: "tiny/random")
        try cache.store(table: labels.name, labels: labels.labels, embeddings: Tensor(zeros: [labels.labels.count, 8]))
        XCTAssertEqual(cache.load(table: labels.name, labels: labels.labels)?.shape, [labels.labels.count, 8], "the hash matches")
        let interrogator = try interrogator(cache: work)
        let table = try interrogator.labelTables().mediums
        XCTAssertEqual(table.dimension, 16)
        XCTAssertEqual(cache.load(table: labels.name, labels: labels.labels)?.shape, [labels.labels.count, 16], "rewritten")
    }

    /// A cache holding NaN (right hash, right width) is rebuilt, not ranked with.
    func testCachedTableWithNonFiniteValuesIsRebuilt() throws {
        let labels = try LabelSet(directory: DemoModel.labelDirectory).mediums
        let cache = LabelEmbeddingCache(directory: work, modelName: "tiny/random")
        let nan = Tensor(shape: [labels.labels.count, 16], scalars: [Float](repeating: .nan, count: labels.labels.count * 16))
        try cache.store(table: labels.name, labels: labels.labels, embeddings: nan)
        XCTAssertNil(cache.load(table: labels.name, labels: labels.labels))
        XCTAssertTrue(try interrogator(cache: work).labelTables().mediums.segments[0].isFinite)
    }

    /// A cache folder that cannot be written is one warning; the tables are built
    /// once and kept in memory (every image failed, each rebuilding them).
    func testUnwritableCacheIsOneWarningAndTablesStayInMemory() throws {
        let file = work.appendingPathComponent("a-file")
        try Data("not a folder".utf8).write(to: file)
        let warnings = Seen<InterrogatorWarning>(), builds = Seen<String>()
        let interrogator = try interrogator(cache: file.appendingPathComponent("cache"), warnings: warnings, builds: builds)
        let image = try ImageDecoder.decode(contentsOf: Fixtures.url("interrogator/images/image0.png"))
        for _ in 0..<2 { XCTAssertNotNil(try interrogator.interrogate([image], mode: InterrogationMode.fast).prompt) }
        let seen = warnings.all
        XCTAssertEqual(seen.count, 1, "\(seen)")
        guard case let .cacheNotWritten(directory, _)? = seen.first else { return XCTFail("\(seen)") }
        XCTAssertEqual(directory, file.appendingPathComponent("cache").path)
        XCTAssertEqual(builds.all.count, 6, "each of the six tables embedded once: \(builds.all)")
    }

    // MARK: Modes

    /// `--mode caption --negative` dropped the negative prompt.
    func testCaptionModeWithNegativeGivesBoth() throws {
        let image = try ImageDecoder.decode(contentsOf: Fixtures.url("interrogator/images/image0.png"))
        var options = InterrogationOptions()
        options.includeNegative = true
        let interrogator = try interrogator()
        let result = try interrogator.interrogate([image], mode: InterrogationMode.caption, options: options)
        XCTAssertEqual(result.prompt, result.caption)
        XCTAssertEqual(result.negativePrompt, try interrogator.negativePrompt(image: interrogator.imageEmbedding([image])))
    }

    // MARK: Results files

    /// A record with a NaN similarity was written as an empty line (jsonl), broke
    /// every later rewrite (json), or printed nothing (json to stdout); it is now
    /// refused with nothing written, and later records are unaffected.
    func testRecordWithNonFiniteNumbersIsNeverWritten() throws {
        var bad = InterrogationResult(mode: .analyze)
        bad.analysis = [TableMatches(table: "flavor", matches: [.init(label: "x", similarity: .nan)])]
        let good = InterrogationResult(mode: .caption, caption: "a cat", prompt: "a cat")
        for format in [OutputFormat.jsonl, .json] {
            let file = work.appendingPathComponent("out.\(format.rawValue)")
            let writer = try ResultWriter(format: format, url: file, resume: false, singleImage: false)
            XCTAssertThrowsError(try writer.write(BatchRecord(image: "bad.png", result: bad)))
            try writer.write(BatchRecord(image: "good.png", result: good))
            try writer.close()
            let reread = try ResultWriter(format: format, url: file, resume: true, singleImage: false)
            XCTAssertEqual(reread.records, [BatchRecord(image: "good.png", result: good)], "\(format)")
            try reread.close()
            let text = try String(contentsOf: file, encoding: .utf8)
            XCTAssertFalse(text.contains("\n\n") || text.hasPrefix("\n"), "\(format): no empty line in \(text)")
        }
    }

    /// Resume refuses (and leaves untouched) anything but its own records: notes,
    /// another format, a damaged record, a CSV with a foreign header or quoting.
    func testResumeRefusesWhatItDoesNotUnderstand() throws {
        let record = try ResultWriter.json(BatchRecord(image: "a.png", result: InterrogationResult(mode: .fast, prompt: "p")), pretty: false)
        let cases: [(OutputFormat, String)] = [
            (.jsonl, "my notes about the photos\nsecond line\n"), (.jsonl, record + "\n{\"image\": 3}\n"),
            (.jsonl, record + "\nnot json\n" + record + "\n"), (.jsonl, "[\n" + record + "\n]\n"),
            (.json, "{\"image\": \"a.png\"}"), (.json, record + "\n"), (.json, "my notes\n"),
            (.csv, "name,text\r\na,b\r\n"), (.csv, "image,prompt,error\r\na,b\r\n"), (.csv, "image,prompt\r\na,b\"c\r\n"),
            (.csv, "image,prompt\r\n\"a\"x,b\r\n"), (.csv, "my notes\n"),
        ]
        for (format, text) in cases {
            let file = work.appendingPathComponent("resume.\(format.rawValue)")
            try Data(text.utf8).write(to: file)
            XCTAssertThrowsError(try ResultWriter(format: format, url: file, resume: true, singleImage: false), "\(format): \(text)") { error in
                guard case ResultWriterError.notUnderstood(file.path, _, _)? = error as? ResultWriterError else {
                    return XCTFail("\(format) \(text): \(error)")
                }
                XCTAssertTrue((error as? ResultWriterError)?.isUsageError == true)
            }
            XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), text, "\(format): left as it was")
        }
        let text = work.appendingPathComponent("out.txt")
        try Data("a.png: prompt\n".utf8).write(to: text)
        XCTAssertThrowsError(try ResultWriter(format: .text, url: text, resume: true, singleImage: false)) { error in
            guard case .notResumable? = error as? ResultWriterError else { return XCTFail("\(error)") }
        }
    }

    /// What resume keeps: every complete record, a torn last record of a killed
    /// run dropped, the reference's two-column desc.csv continued in its layout,
    /// and failed images (error records) done again.
    func testResumeKeepsRecordsAndRetriesFailures() throws {
        let ok = BatchRecord(image: "a, b.png", result: InterrogationResult(mode: .fast, prompt: "x, \"y\"\nz"))
        let failed = BatchRecord(image: "c.png", error: "corrupt PNG image: broken")
        let jsonl = work.appendingPathComponent("out.jsonl")
        let lines = try [ok, failed].map { try ResultWriter.json($0, pretty: false) + "\n" }.joined()
        try Data((lines + "{\"image\":\"d.p").utf8).write(to: jsonl)
        let writer = try ResultWriter(format: .jsonl, url: jsonl, resume: true, singleImage: false)
        XCTAssertEqual(writer.records, [ok, failed])
        XCTAssertEqual(writer.completedImages, ["a, b.png"], "the failed image is done again")
        try writer.close()
        XCTAssertEqual(try String(contentsOf: jsonl, encoding: .utf8), lines, "the torn record is gone, the rest kept byte for byte")

        let csv = work.appendingPathComponent("desc.csv")
        try Data("image,prompt\r\n\"a, b.png\",\"x, \"\"y\"\"\nz\"\r\nc.png,half a r".utf8).write(to: csv)
        let resumed = try ResultWriter(format: .csv, url: csv, resume: true, singleImage: false)
        XCTAssertEqual(resumed.records.map(\.image), ["a, b.png"])
        XCTAssertEqual(resumed.records.first?.summary, "x, \"y\"\nz")
        try resumed.write(BatchRecord(image: "e.png", result: InterrogationResult(mode: .fast, prompt: "q")))
        try resumed.write(BatchRecord(image: "f.png", error: "unreadable"))
        try resumed.close()
        XCTAssertEqual(try String(contentsOf: csv, encoding: .utf8), "image,prompt\r\n\"a, b.png\",\"x, \"\"y\"\"\nz\"\r\ne.png,q\r\n",
                       "two columns kept; a failure has no place in them")
    }

    /// Resuming a CSV costs time linear in its size (the fuzzer found a 12 KB
    /// input that took 13 s: each row's length was recounted from the start).
    func testResumingALargeCSVIsLinear() throws {
        let csv = work.appendingPathComponent("big.csv")
        let rows = (0..<60_000).map { "img\($0).png,\"a, b\",\r\n" }.joined()
        try Data(("image,prompt,error\r\n" + rows).utf8).write(to: csv)
        let start = Date()
        let writer = try ResultWriter(format: .csv, url: csv, resume: true, singleImage: false)
        XCTAssertEqual(writer.records.count, 60_000)
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
        try writer.close()
    }

    /// Streams are written in place, one write per record: the JSON array of a
    /// stream is the same document a file gets.
    func testJSONStreamIsTheSameDocumentAsTheFile() throws {
        let records = [BatchRecord(image: "a.png", result: InterrogationResult(mode: .fast, prompt: "p")),
                       BatchRecord(image: "b.png", error: "broken")]
        let fifo = work.appendingPathComponent("stream")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        let received = Seen<Data>()
        let reader = Thread {
            if let handle = FileHandle(forReadingAtPath: fifo.path) { received.append(handle.readDataToEndOfFile()) }
        }
        reader.start()
        let writer = try ResultWriter(format: .json, url: fifo, resume: false, singleImage: false)
        for record in records { try writer.write(record) }
        try writer.close()
        let deadline = Date().addingTimeInterval(10)
        while received.all.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let file = work.appendingPathComponent("out.json")
        let fileWriter = try ResultWriter(format: .json, url: file, resume: false, singleImage: false)
        for record in records { try fileWriter.write(record) }
        try fileWriter.close()
        XCTAssertEqual(String(decoding: received.all.first ?? Data(), as: UTF8.self), try String(contentsOf: file, encoding: .utf8))
        XCTAssertEqual(try JSONDecoder().decode([BatchRecord].self, from: Data(contentsOf: file)), records)
        var info = stat()
        XCTAssertEqual(stat(fifo.path, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "still a FIFO")
    }
}
