import Foundation
import XCTest

/// The `interrogate` executable run as a process on the tiny checkpoints
/// (Tests/Fixtures/interrogator/clip with the real CLIP vocabulary, and
/// Tests/Fixtures/blip/tiny-base).
final class CLITests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    /// Shared by every run: the label tables are embedded once, then loaded.
    static let cache = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tests-cache-\(UUID().uuidString)")
    var work: URL!

    override func setUpWithError() throws {
        work = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(at: cache)
    }

    /// The built executable, next to the test bundle.
    static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("interrogate").path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("interrogate")
    }

    struct Run { let status: Int32; let stdout: String; let stderr: String }

    /// Runs the CLI (`executable`, by default the built one) with the tiny models
    /// and a shared cache; with `launcher` (e.g. `setpriv` and its options),
    /// through that program.
    @discardableResult
    func interrogate(_ arguments: [String], models: Bool = true, environment extra: [String: String] = [:],
                     executable: URL = CLITests.executable, launcher: [String] = []) throws -> Run {
        let process = Process()
        process.executableURL = launcher.first.map { URL(fileURLWithPath: $0) } ?? executable
        var all = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [executable.path] + arguments
        if models {
            all += ["--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
                    "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
                    "--cache-dir", Self.cache.path, "--offline"]
        }
        process.arguments = all
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_CACHE"] = work.appendingPathComponent("hub").path
        environment.merge(extra) { $1 }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// A folder of `count` copies of the fixture images under distinct names.
    func imageFolder(_ count: Int) throws -> URL {
        let folder = work.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let sources = ["interrogator/images/image0.png", "interrogator/images/image1.jpg", "interrogator/images/image2.png"]
        for i in 0..<count {
            let source = Self.fixtures.appendingPathComponent(sources[i % sources.count])
            let name = i % 4 == 3 ? "sub/pic\(i).\(source.pathExtension.uppercased())" : "pic\(i).\(source.pathExtension)"
            try FileManager.default.copyItem(at: source, to: folder.appendingPathComponent(name))
        }
        return folder
    }

    func testHelpDescribesEveryOption() throws {
        let run = try interrogate(["--help"], models: false)
        XCTAssertEqual(run.status, 0)
        for option in ["--folder", "--recursive", "--mode", "--clip", "--caption", "--subject", "--labels", "--combine",
                       "--format", "--output", "--sidecar", "--threads", "--cache-dir", "--quiet", "--offline", "--resume", "--shard", "--demo", "--label-set"] {
            XCTAssertTrue(run.stdout.contains(option), "help mentions \(option)")
        }
    }

    func testEveryModeProducesOutput() throws {
        let image = Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path
        for mode in ["caption", "fast", "classic", "negative", "analyze", "best"] {
            let run = try interrogate(["--mode", mode, "--quiet", image])
            XCTAssertEqual(run.status, 0, "\(mode): \(run.stderr)")
            XCTAssertFalse(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(mode) printed a result")
        }
        // Style mode: the subject replaces the caption.
        let styled = try interrogate(["--mode", "fast", "--subject", "a lighthouse", "--quiet", image])
        XCTAssertEqual(styled.status, 0, styled.stderr)
        XCTAssertTrue(styled.stdout.hasPrefix("a lighthouse, "), styled.stdout)
    }

    /// The README's first command: the demo pair, no network, no model options.
    func testDemoRunsOfflineWithItsOwnLabels() throws {
        struct Reference: Decodable {
            struct Entry: Decodable { let caption: String; let fast: String }
            let images: [Entry]
        }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("demo/reference.json")))
        let image = Self.fixtures.appendingPathComponent("demo/heldout/00.png").path
        let offline = ["HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"]
        let fast = try interrogate(["--demo", "--mode", "fast", image], models: false, environment: offline)
        XCTAssertEqual(fast.status, 0, fast.stderr)
        XCTAssertEqual(fast.stdout, reference.images[0].fast + "\n")
        let analysis = try interrogate(["--demo", "--mode", "analyze", "--format", "json", "--quiet", image],
                                       models: false, environment: offline)
        XCTAssertEqual(analysis.status, 0, analysis.stderr)
        for table in ["colors", "shapes", "styles", "backgrounds", "objects"] {
            XCTAssertTrue(analysis.stdout.contains("\"\(table)\""), "analysis lists \(table): \(analysis.stdout)")
        }
        let conflicting = try interrogate(["--demo", "--clip", "ViT-B-32/openai", image], models: false)
        XCTAssertEqual(conflicting.status, 64, conflicting.stderr)
        let noSet = try interrogate(["--mode", "analyze", "--label-set", work.path, "--quiet", image])
        XCTAssertNotEqual(noSet.status, 0)
        XCTAssertTrue(noSet.stderr.contains("label-set.json"), noSet.stderr)
    }

    func testEveryFormat() throws {
        let images = ["interrogator/images/image0.png", "interrogator/images/image1.jpg"].map { Self.fixtures.appendingPathComponent($0).path }
        let text = try interrogate(["--mode", "caption", "--quiet"] + images)
        XCTAssertEqual(text.stdout.split(separator: "\n").count, 2)
        XCTAssertTrue(text.stdout.hasPrefix(images[0] + ": "))

        let json = try interrogate(["--mode", "caption", "--quiet", "--format", "json"] + images)
        let array = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(array.map { $0["image"] as? String }, images)

        let jsonlFile = work.appendingPathComponent("out.jsonl")
        XCTAssertEqual(try interrogate(["--mode", "caption", "--quiet", "--format", "jsonl", "--output", jsonlFile.path] + images).status, 0)
        let lines = try String(contentsOf: jsonlFile, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        for line in lines { XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) }

        let csv = try interrogate(["--mode", "caption", "--quiet", "--format", "csv"] + images)
        // The reference's desc.csv columns (image, prompt), then the error column
        // failed images fill.
        XCTAssertTrue(csv.stdout.hasPrefix("image,prompt,error\r\n"), csv.stdout)
        XCTAssertEqual(csv.stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count, 3)

        // One prompt for several images.
        let combined = try interrogate(["--mode", "fast", "--combine", "--quiet", "--format", "jsonl"] + images)
        XCTAssertEqual(combined.stdout.split(separator: "\n").count, 1)
    }

    func testFolderWithBadFilesFinishesAndReportsThem() throws {
        let folder = try imageFolder(4)
        try Data("this is not a PNG".utf8).write(to: folder.appendingPathComponent("corrupt.png"))
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("missing.jpg"),
                                                   withDestinationURL: folder.appendingPathComponent("nowhere.jpg"))
        try Data().write(to: folder.appendingPathComponent("notes.txt"))
        let output = work.appendingPathComponent("desc.csv")
        let run = try interrogate(["--folder", folder.path, "--recursive", "--mode", "caption", "--format", "csv",
                                   "--output", output.path, "--sidecar"])
        XCTAssertEqual(run.status, 1, "a failed input makes the exit status non-zero")
        XCTAssertTrue(run.stderr.contains("4 succeeded, 2 failed"), run.stderr)
        XCTAssertTrue(run.stderr.contains("corrupt.png") && run.stderr.contains("missing.jpg"), run.stderr)
        let rows = try String(contentsOf: output, encoding: .utf8).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(rows.count, 7, "header + the 4 good images + an error row for each bad one")
        XCTAssertEqual(rows.filter { $0.hasPrefix("corrupt.png,,") || $0.hasPrefix("missing.jpg,,") }.count, 2, "error rows: image, no prompt, the reason")
        XCTAssertTrue(rows.contains { $0.hasPrefix("sub/pic3.PNG,") }, "recursive, any letter case")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("pic0.txt").path), "sidecar")
    }

    func testResumeAfterAKilledRunLosesNothingAndRepeatsNothing() throws {
        let folder = try imageFolder(12)
        let output = work.appendingPathComponent("out.jsonl")
        // Start a run and kill it once the first results are on disk.
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["--folder", folder.path, "--recursive", "--mode", "caption", "--format", "jsonl", "--output", output.path,
                             "--quiet", "--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
                             "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
                             "--cache-dir", Self.cache.path, "--offline"]
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            if let text = try? String(contentsOf: output, encoding: .utf8), text.split(separator: "\n").count >= 2 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        process.waitUntilExit()
        let before = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").count
        XCTAssertGreaterThanOrEqual(before, 2)
        XCTAssertLessThan(before, 12, "the run was interrupted")

        let resumed = try interrogate(["--folder", folder.path, "--recursive", "--mode", "caption", "--format", "jsonl",
                                       "--output", output.path, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let names = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { line -> String in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["image"] as? String ?? "unparseable: \(line)"
        }
        XCTAssertEqual(names.count, 12, "no duplicate, no lost line")
        XCTAssertEqual(Set(names).count, 12)
    }

    func testShardsCoverEveryImageExactlyOnce() throws {
        let folder = try imageFolder(10)
        var seen: [String] = []
        for index in 1...3 {
            let run = try interrogate(["--folder", folder.path, "--recursive", "--mode", "caption", "--format", "csv", "--quiet",
                                       "--shard", "\(index)/3"])
            XCTAssertEqual(run.status, 0, run.stderr)
            seen += run.stdout.components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty }.map { String($0.split(separator: ",")[0]) }
        }
        XCTAssertEqual(seen.count, 10)
        XCTAssertEqual(Set(seen).count, 10)
        XCTAssertEqual(try interrogate(["--folder", folder.path, "--shard", "4/3"], models: false).status, 64, "invalid shard")
    }

    func testOfflineWithoutTheModelListsTheMissingFiles() throws {
        let run = try interrogate(["--clip", "ViT-B-32/openai", "--mode", "analyze", "--offline", "--quiet",
                                   Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path], models: false)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("model.safetensors") && run.stderr.contains("openai/clip-vit-base-patch32"), run.stderr)
    }
}
