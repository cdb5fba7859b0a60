import Foundation
import TestSupport
import XCTest

/// Issue 13 through the command: streamed and error records, output safety,
/// argument validation, and memory bounds measured in the child. Hostile files
/// are made here; the demo label set keeps the tables small.
extension CLITests {
    /// The demo's label set, so runs embed a few dozen labels instead of 111k.
    var smallLabels: [String] {
        ["--label-set", Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Weights/demo/labels").path]
    }

    /// The tiny models, a private cache and no network, for runs made without ``interrogate(_:models:environment:)``.
    var modelArguments: [String] {
        ["--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
         "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
         "--cache-dir", Self.cache.path, "--offline"]
    }

    var image0: String { Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path }

    // MARK: Records

    /// Records reach a pipe as each image finishes (stdout was block-buffered:
    /// `| jq` and an interrupted `> out.jsonl` saw nothing until the end). The
    /// first image is small, the second a 6000 × 6000 PNG that takes a while:
    /// the first record must arrive while the run is still busy with it (one
    /// image per batch: a batch's records are written together, as it finishes).
    func testRecordsStreamThroughAPipeAsTheyFinish() throws {
        let folder = try imageFolder(1)
        try Data(PNGBuilder.gray(width: 6000, height: 6000)).write(to: folder.appendingPathComponent("slow.png"))
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["--folder", folder.path, "--mode", "caption", "--format", "jsonl", "--quiet", "--batch-size", "1"]
            + modelArguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var received = Data()
        while !received.contains(10) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            received += chunk
        }
        let firstRecordCame = Date(), firstChunk = received
        received += out.fileHandleForReading.readDataToEndOfFile()
        let outputEnded = Date()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(firstChunk.filter { $0 == 10 }.count, 1, "the first record came alone: \(String(decoding: firstChunk, as: UTF8.self))")
        XCTAssertGreaterThan(outputEnded.timeIntervalSince(firstRecordCame), 0.3, "it came while the large image was still being done")
        XCTAssertEqual(String(decoding: received, as: UTF8.self).split(separator: "\n").map { $0.hasPrefix("{\"image\":\"pic0.png\"") },
                       [true, false])
    }

    /// A failed image is an error record in json, jsonl and csv (it was only
    /// reported on standard error), and the record of a good one follows.
    func testFailedImagesAreErrorRecords() throws {
        let folder = try imageFolder(2)
        try Data("this is not a PNG".utf8).write(to: folder.appendingPathComponent("bad.png"))
        for format in ["jsonl", "json", "csv"] {
            let output = work.appendingPathComponent("out.\(format)")
            let run = try interrogate(["--folder", folder.path, "--mode", "caption", "--format", format, "--output", output.path, "--quiet"])
            XCTAssertEqual(run.status, 1, run.stderr)
            let text = try String(contentsOf: output, encoding: .utf8)
            switch format {
            case "csv":
                XCTAssertTrue(text.hasPrefix("image,prompt,error\r\nbad.png,,unsupported image format: cannot identify image file"), text)
            default:
                let objects: [[String: Any]] = format == "json"
                    ? try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
                    : try text.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                XCTAssertEqual(objects.count, 3)
                XCTAssertEqual(objects[0]["image"] as? String, "bad.png")
                XCTAssertTrue((objects[0]["error"] as? String)?.contains("cannot identify image file") == true, "\(objects[0])")
                XCTAssertNil(objects[0]["result"])
                XCTAssertNotNil(objects[1]["result"])
            }
        }
    }

    /// A NaN weight fails every image with a typed error and an error record; no
    /// empty or partial record is written (jsonl wrote an empty line and exit 0).
    func testNaNWeightFailsTheImageWithoutAnEmptyRecord() throws {
        let scratch = try ScratchCheckpoint("interrogator/clip")
        defer { scratch.remove() }
        try scratch.patchTensor("visual_projection.weight", element: 0, bytes: [0x00, 0x7E])
        let output = work.appendingPathComponent("out.jsonl")
        let run = try interrogate(["--clip", scratch.directory.path, "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
                                   "--cache-dir", work.appendingPathComponent("cache").path, "--offline", "--mode", "analyze",
                                   "--format", "jsonl", "--output", output.path, "--quiet", image0] + smallLabels, models: false)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("NaN or infinite"), run.stderr)
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 2, "one record and the final line end: \(lines)")
        XCTAssertTrue(lines[0].hasPrefix("{\"error\":\"CLIP image embedding holds NaN"), String(lines[0]))
    }

    /// `--mode caption --negative` printed no negative prompt.
    func testCaptionModeWithNegativeHasANegativePrompt() throws {
        let run = try interrogate(["--mode", "caption", "--negative", "--format", "json", "--quiet", image0] + smallLabels)
        XCTAssertEqual(run.status, 0, run.stderr)
        let records = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
        let result = try XCTUnwrap(records.first?["result"] as? [String: Any])
        XCTAssertNotNil(result["caption"])
        XCTAssertFalse((result["negativePrompt"] as? String ?? "").isEmpty, "\(result)")
    }

    /// Blank lines of a `--labels` file were labels (", , ," in prompts); a file
    /// of blank lines only is refused naming it.
    func testBlankLinesInALabelsFileAreNotLabels() throws {
        let labels = work.appendingPathComponent("extra.txt")
        try Data("velvet\n\n   \nmarble\n\n".utf8).write(to: labels)
        let run = try interrogate(["--mode", "analyze", "--format", "json", "--quiet", "--labels", labels.path, image0] + smallLabels)
        XCTAssertEqual(run.status, 0, run.stderr)
        let records = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
        let analysis = try XCTUnwrap((records.first?["result"] as? [String: Any])?["analysis"] as? [[String: Any]])
        let extra = try XCTUnwrap(analysis.first { $0["table"] as? String == "extra" }?["matches"] as? [[String: Any]])
        XCTAssertEqual(Set(extra.compactMap { $0["label"] as? String }), ["velvet", "marble"])
        try Data("\n \n".utf8).write(to: labels)
        let empty = try interrogate(["--mode", "analyze", "--quiet", "--labels", labels.path, image0] + smallLabels)
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains(labels.path) && empty.stderr.contains("no labels"), empty.stderr)
    }

    /// An unwritable cache folder is one warning and every image succeeds (each
    /// failed, after embedding the tables again).
    func testUnwritableCacheIsOneWarning() throws {
        let file = work.appendingPathComponent("not-a-folder")
        try Data("x".utf8).write(to: file)
        let images = ["interrogator/images/image0.png", "interrogator/images/image1.jpg"].map { Self.fixtures.appendingPathComponent($0).path }
        let run = try interrogate(["--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
                                   "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path, "--offline",
                                   "--cache-dir", file.appendingPathComponent("cache").path, "--mode", "fast", "--quiet"] + images + smallLabels,
                                  models: false)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout.split(separator: "\n").count, 2)
        XCTAssertEqual(run.stderr.components(separatedBy: "warning: cannot write label embeddings").count - 1, 1, run.stderr)
    }

    // MARK: Output safety

    /// Resume refuses, with exit 64 and the file untouched, a file it does not
    /// fully understand (it deleted what it could not parse and exited 0), and
    /// text output, which cannot be read back unambiguously.
    func testResumeRefusesAFileItDoesNotUnderstand() throws {
        let notes = "Photos to caption:\n- the beach ones\n- not the blurry ones\n"
        for (format, name) in [("jsonl", "notes.jsonl"), ("csv", "notes.csv"), ("json", "notes.json")] {
            let output = work.appendingPathComponent(name)
            try Data(notes.utf8).write(to: output)
            let run = try interrogate(["--mode", "caption", "--format", format, "--output", output.path, "--resume", "--quiet", image0])
            XCTAssertEqual(run.status, 64, "\(format): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("cannot resume \(output.path)"), run.stderr)
            XCTAssertEqual(try String(contentsOf: output, encoding: .utf8), notes, "\(format): left as it was")
        }
        let text = work.appendingPathComponent("out.txt")
        try Data("image: a: b: prompt\n".utf8).write(to: text)
        let run = try interrogate(["--mode", "caption", "--output", text.path, "--resume", "--quiet", image0])
        XCTAssertEqual(run.status, 64, run.stderr)
        XCTAssertEqual(try String(contentsOf: text, encoding: .utf8), "image: a: b: prompt\n")
    }

    /// A symbolic link is followed (it was replaced by a regular file), a FIFO and
    /// a device are written in place (they became regular files), and
    /// `/dev/fd/1` reaches standard output.
    func testOutputsThatAreNotPlainFilesAreWrittenInPlace() throws {
        let target = work.appendingPathComponent("real.jsonl"), link = work.appendingPathComponent("link.jsonl")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        XCTAssertEqual(try interrogate(["--mode", "caption", "--format", "jsonl", "--output", link.path, "--quiet", image0]).status, 0)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), target.path, "still a link")
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8).split(separator: "\n").count, 1)
        // JSON is replaced atomically: through the link, into its target.
        XCTAssertEqual(try interrogate(["--mode", "caption", "--format", "json", "--output", link.path, "--quiet", image0]).status, 0)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), target.path, "still a link")
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(contentsOf: target)) as? [Any])

        let fifo = work.appendingPathComponent("fifo")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        let received = Received()
        let reader = Thread { if let handle = FileHandle(forReadingAtPath: fifo.path) { received.set(handle.readDataToEndOfFile()) } }
        reader.start()
        XCTAssertEqual(try interrogate(["--mode", "caption", "--format", "jsonl", "--output", fifo.path, "--quiet", image0]).status, 0)
        XCTAssertTrue(received.wait().contains(Data("\"image\"".utf8)), "the reader got the record")
        XCTAssertEqual(fileType(fifo.path), S_IFIFO, "still a FIFO")

        if getuid() == 0 {
            // As root, /dev/null became a regular file; a private node of the same device shows it safely.
            let device = work.appendingPathComponent("null")
            XCTAssertEqual(mknod(device.path, S_IFCHR | 0o666, 259 /* makedev(1, 3) */), 0)
            XCTAssertEqual(try interrogate(["--mode", "caption", "--format", "json", "--output", device.path, "--quiet", image0]).status, 0)
            XCTAssertEqual(fileType(device.path), S_IFCHR, "still a device")
        }
        let viaFD = try interrogate(["--mode", "caption", "--format", "jsonl", "--output", "/dev/fd/1", "--quiet", image0])
        XCTAssertEqual(viaFD.status, 0, viaFD.stderr)
        XCTAssertTrue(viaFD.stdout.hasPrefix("{\"image\""), viaFD.stdout)
    }

    /// As an ordinary user, `--output /dev/stdout` could not be written (the
    /// rename needed write access to /dev); and with no writable home (a
    /// container running as nobody) the default cache failed every image. Now
    /// the records arrive and the cache is one warning.
    func testAnOrdinaryUserWithoutAHomeCanInterrogate() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root to run the command as nobody (setpriv)")
        }
        let run = try interrogate(["--mode", "fast", "--format", "jsonl", "--output", "/dev/stdout", "--quiet", "--offline",
                                   "--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
                                   "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path, image0] + smallLabels,
                                  models: false, environment: ["HOME": "/nonexistent", "HF_HUB_CACHE": "/nonexistent/hub"],
                                  launcher: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.hasPrefix("{\"image\""), run.stdout)
        XCTAssertEqual(run.stderr.components(separatedBy: "warning: cannot write label embeddings").count - 1, 1, run.stderr)
    }

    /// `--output` naming one of the inputs truncated the image to 0 bytes; it is
    /// refused with exit 64 (also through a link, and the sidecar of an input).
    func testOutputThatIsAnInputIsRefused() throws {
        let image = work.appendingPathComponent("photo.png")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: image0), to: image)
        let before = try Data(contentsOf: image)
        let link = work.appendingPathComponent("alias.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: image)
        for output in [image.path, link.path] {
            let run = try interrogate(["--mode", "caption", "--output", output, image.path], models: false)
            XCTAssertEqual(run.status, 64, run.stderr)
            XCTAssertTrue(run.stderr.contains("is the input image"), run.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: image), before)
        let sidecar = try interrogate(["--mode", "caption", "--sidecar", "--output", work.appendingPathComponent("photo.txt").path, image.path],
                                      models: false)
        XCTAssertEqual(sidecar.status, 64, sidecar.stderr)
    }

    /// The output is opened (locked, a resumed file read) before the models load,
    /// but changed only when the first record comes: a run that cannot start
    /// leaves an existing file as it was and creates none.
    func testARunThatCannotStartLeavesTheOutputAlone() throws {
        let existing = work.appendingPathComponent("existing.jsonl"), absent = work.appendingPathComponent("absent.jsonl")
        try Data("{\"image\":\"old.png\",\"result\":{\"mode\":\"caption\",\"prompt\":\"p\"}}\n".utf8).write(to: existing)
        let before = try Data(contentsOf: existing)
        for output in [existing, absent] {
            let run = try interrogate(["--clip", work.path, "--offline", "--mode", "analyze", "--format", "jsonl", "--output", output.path,
                                       "--quiet", image0], models: false)
            XCTAssertEqual(run.status, 1, run.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: existing), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: absent.path))
    }

    /// The output file is locked for the run: a second run on it stops at once
    /// (two runs kept 20 of 40 records, both exiting 0).
    func testOutputIsLockedForTheRun() throws {
        let output = work.appendingPathComponent("out.jsonl")
        try Data().write(to: output)
        let fd = open(output.path, O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0, "this test holds the lock, as a running interrogate would")
        let run = try interrogate(["--mode", "caption", "--format", "jsonl", "--output", output.path, "--quiet", image0])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("being written by another run"), run.stderr)
        XCTAssertEqual(try Data(contentsOf: output), Data(), "the other run's file is untouched")
    }

    /// Two images that would share a sidecar are refused (exit 64); a `.txt` with
    /// the user's own text is kept (it was overwritten) and that image fails with
    /// an error record, which resume retries; `--overwrite-sidecars` replaces it.
    func testSidecarsNeverDestroyTheUsersFiles() throws {
        let folder = work.appendingPathComponent("pics")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: image0), to: folder.appendingPathComponent("x.png"))
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("interrogator/images/image1.jpg"),
                                         to: folder.appendingPathComponent("x.jpg"))
        let clash = try interrogate(["--folder", folder.path, "--mode", "caption", "--sidecar"], models: false)
        XCTAssertEqual(clash.status, 64, clash.stderr)
        XCTAssertTrue(clash.stderr.contains("x.jpg and x.png"), clash.stderr)

        try FileManager.default.removeItem(at: folder.appendingPathComponent("x.jpg"))
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("interrogator/images/image1.jpg"),
                                         to: folder.appendingPathComponent("y.jpg"))
        let mine = folder.appendingPathComponent("x.txt")
        try Data("my own caption\n".utf8).write(to: mine)
        let output = work.appendingPathComponent("out.jsonl")
        let kept = try interrogate(["--folder", folder.path, "--mode", "caption", "--sidecar", "--format", "jsonl", "--output", output.path, "--quiet"])
        XCTAssertEqual(kept.status, 1, kept.stderr)
        XCTAssertEqual(try String(contentsOf: mine, encoding: .utf8), "my own caption\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("y.txt").path))
        XCTAssertTrue(try String(contentsOf: output, encoding: .utf8).contains("{\"error\":\"sidecar \(mine.path)"))

        let again = try interrogate(["--folder", folder.path, "--mode", "caption", "--sidecar", "--overwrite-sidecars", "--format", "jsonl",
                                     "--output", output.path, "--resume", "--quiet"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertNotEqual(try String(contentsOf: mine, encoding: .utf8), "my own caption\n")
        let records = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(records.count, 3, "x's error record, y's record, x's record on resume")
        // A sidecar this run's interrupted predecessor wrote (same text) is not "foreign".
        let same = try interrogate(["--folder", folder.path, "--mode", "caption", "--sidecar", "--quiet"])
        XCTAssertEqual(same.status, 0, same.stderr)
    }

    /// `--shard` applies to listed files too (it was ignored for them).
    func testShardsSplitListedFiles() throws {
        let folder = try imageFolder(9)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }
            .map { folder.appendingPathComponent($0).path }
        var seen: [String] = []
        for index in 1...3 {
            let run = try interrogate(["--mode", "caption", "--format", "csv", "--quiet", "--shard", "\(index)/3"] + files)
            XCTAssertEqual(run.status, 0, run.stderr)
            seen += run.stdout.components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty }.map { String($0.split(separator: ",")[0]) }
        }
        XCTAssertEqual(seen.sorted(), files.sorted())
    }

    /// Arguments are checked with clear messages and exit 64: negative or
    /// malformed shards and threads (they said "Missing value" or were taken as
    /// 1/4), an empty folder (it succeeded silently), a file given as a model
    /// folder (it was taken for a repository id).
    func testArgumentsAreValidatedWithClearMessages() throws {
        let empty = work.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let file = work.appendingPathComponent("model.safetensors")
        try Data().write(to: file)
        let cases: [([String], String)] = [
            (["--shard", "-1/4", image0], "--shard"), (["--shard", "1/x/4", image0], "--shard"), (["--shard", "0/3", image0], "--shard"),
            (["--threads", "-1", image0], "--threads"), (["--threads", "0", image0], "--threads"),
            (["--folder", empty.path], "holds no .jpg"), (["--clip", file.path, image0], "is a file"),
            (["--caption", "./no/such/folder", image0], "no such folder"),
        ]
        for (arguments, message) in cases {
            let run = try interrogate(arguments, models: false)
            XCTAssertEqual(run.status, 64, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
    }

    // MARK: Model and label files

    /// Damaged config, preprocessor and tokenizer files stop the run before any
    /// image with a message naming the file and the key (they trapped, ran with
    /// NaN-producing settings, or lost caption words); exit 1.
    func testDamagedModelFilesAreRefusedNamingFileAndKey() throws {
        let cases: [(fixture: String, file: String, key: String, value: Any, message: String)] = [
            ("interrogator/clip", "config.json", "vision_config.image_size", -64, "vision_config.image_size"),
            ("interrogator/clip", "config.json", "text_config.num_hidden_layers", -1, "text_config.num_hidden_layers"),
            ("interrogator/clip", "config.json", "text_config.max_position_embeddings", 0, "text_config.max_position_embeddings"),
            ("interrogator/clip", "config.json", "vision_config.layer_norm_eps", -1e-5, "vision_config.layer_norm_eps"),
            ("interrogator/clip", "preprocessor_config.json", "image_std", [0.5, 0, 0.5], "image_std"),
            ("blip/tiny-base", "preprocessor_config.json", "size", ["height": 0, "width": 0], "size"),
            ("blip/tiny-base", "preprocessor_config.json", "size", ["height": 100_000, "width": 100_000], "size"),
        ]
        for (fixture, file, key, value, message) in cases {
            let scratch = try ScratchCheckpoint(fixture)
            defer { scratch.remove() }
            try scratch.setJSON(file, key, value)
            let isCLIP = fixture.hasPrefix("interrogator")
            let run = try interrogate(["--clip", isCLIP ? scratch.directory.path : Self.fixtures.appendingPathComponent("interrogator/clip").path,
                                       "--caption", isCLIP ? Self.fixtures.appendingPathComponent("blip/tiny-base").path : scratch.directory.path,
                                       "--offline", "--mode", "fast", "--quiet", image0] + smallLabels, models: false)
            XCTAssertEqual(run.status, 1, "\(file) \(key): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(scratch.url(file).path) && run.stderr.contains(message), "\(file) \(key): \(run.stderr)")
        }
        // A vocab.txt shorter than the model's vocabulary gave empty captions.
        let scratch = try ScratchCheckpoint("blip/tiny-base")
        defer { scratch.remove() }
        let lines = try String(contentsOf: scratch.url("vocab.txt"), encoding: .utf8).split(separator: "\n")
        try (lines.prefix(1000).joined(separator: "\n") + "\n").write(to: scratch.url("vocab.txt"), atomically: true, encoding: .utf8)
        let run = try interrogate(["--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path, "--caption", scratch.directory.path,
                                   "--offline", "--mode", "caption", "--quiet", image0], models: false)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("text_config.vocab_size"), run.stderr)
    }

    /// One id of 2·10⁹ in vocab.json sized a 32 GB table
    /// (the run aborted); the tokenizer now keeps ids in a dictionary and the run
    /// works in bounded memory.
    func testHugeVocabularyIdCostsNothing() throws {
        let scratch = try ScratchCheckpoint("interrogator/clip")
        defer { scratch.remove() }
        try scratch.setJSON("vocab.json", "zebra</w>", 2_000_000_000)
        let run = try MeasuredRun.run(Self.executable, ["--clip", scratch.directory.path, "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
                                                        "--offline", "--mode", "caption", "--quiet", image0],
                                      environment: ["HF_HUB_CACHE": work.appendingPathComponent("hub").path], addressSpaceLimitMiB: 4096)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertLessThan(run.peakKiB, 400 << 10, "peak resident memory \(run.peakKiB) KiB")
    }

    /// A label set with an empty list is refused naming the file (classic and best
    /// mode crashed on it; then they silently used "").
    func testEmptyLabelListIsRefusedNamingTheFile() throws {
        let labels = work.appendingPathComponent("labels")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: smallLabels[1]), to: labels)
        try Data("\n\n".utf8).write(to: labels.appendingPathComponent("colors.txt"))
        let run = try interrogate(["--mode", "classic", "--label-set", labels.path, "--quiet", image0])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains(labels.appendingPathComponent("colors.txt").path) && run.stderr.contains("no labels"), run.stderr)
    }

    /// `--demo --cache-dir` filed the demo's caches under the fixed name "demo",
    /// so a retrained demo reused stale embeddings; the name now carries a
    /// fingerprint of the checkpoint.
    func testDemoCachesCarryTheCheckpointsFingerprint() throws {
        let cache = work.appendingPathComponent("demo-cache")
        let run = try interrogate(["--demo", "--mode", "fast", "--cache-dir", cache.path, "--quiet",
                                   Self.fixtures.appendingPathComponent("demo/heldout/00.png").path], models: false)
        XCTAssertEqual(run.status, 0, run.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        XCTAssertFalse(files.isEmpty)
        for file in files { XCTAssertNotNil(file.range(of: #"^demo-[0-9a-f]{12}_"#, options: .regularExpression), file) }
    }

    // MARK: Inputs and memory

    /// A PNG whose pixel count overflows (it trapped) and a progressive JPEG of
    /// thousands of scans (it decoded for as long as it liked) are reported and
    /// the batch goes on.
    func testHostileImagesAreReportedAndTheBatchGoesOn() throws {
        let folder = try imageFolder(1)
        try Data(PNGBuilder.signature + PNGBuilder.header(width: 0xFFFF_FFFF, height: 0xFFFF_FFFF)
                 + PNGBuilder.chunk("IDAT", []) + PNGBuilder.chunk("IEND", [])).write(to: folder.appendingPathComponent("huge.png"))
        try Data(JPEGBuilder.progressiveGray(scans: 5_000)).write(to: folder.appendingPathComponent("scans.jpg"))
        let run = try interrogate(["--folder", folder.path, "--mode", "caption", "--format", "jsonl", "--quiet"])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("1 succeeded, 2 failed"), run.stderr)
        XCTAssertTrue(run.stderr.contains("huge.png: PNG image too large"), run.stderr)
        XCTAssertTrue(run.stderr.contains("scans.jpg: corrupt JPEG image: progressive JPEG has more than 500 scans"), run.stderr)
    }

    /// A FIFO named like an image and a device are reported and skipped at once
    /// (the FIFO blocked the batch; the device said "permission").
    func testFIFOsAndDevicesAreReportedNotWaitedOn() throws {
        let folder = try imageFolder(1)
        XCTAssertEqual(mkfifo(folder.appendingPathComponent("stuck.png").path, 0o644), 0)
        let run = try interrogate(["--folder", folder.path, "--mode", "caption", "--quiet", "/dev/zero"])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("stuck.png: cannot read image file") && run.stderr.contains("FIFO"), run.stderr)
        XCTAssertTrue(run.stderr.contains("/dev/zero: cannot read image file") && run.stderr.contains("device"), run.stderr)
        XCTAssertTrue(run.stderr.contains("1 succeeded, 2 failed"), run.stderr)
    }

    /// A 1 × 5,000,000 PNG (inside the pixel limit) reached 12 GB in the
    /// shortest-side resize; now CLIP and BLIP preprocessing cost their crop and
    /// the whole run stays near the cost of the decoded strip (15 MB) — bounded
    /// here at 400 MiB peak resident memory, measured in the child.
    func testExtremeAspectRatioRunsInBoundedMemory() throws {
        let strip = work.appendingPathComponent("strip.png")
        try Data(PNGBuilder.gray(width: 1, height: 5_000_000) { UInt8(truncatingIfNeeded: $0 / 20_000) }).write(to: strip)
        let run = try MeasuredRun.run(Self.executable, ["--mode", "fast", "--quiet", strip.path] + modelArguments + smallLabels,
                                      environment: ["HF_HUB_CACHE": work.appendingPathComponent("hub").path], addressSpaceLimitMiB: 4096)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertFalse(run.stdout.isEmpty)
        XCTAssertLessThan(run.peakKiB, 400 << 10, "peak resident memory \(run.peakKiB) KiB")
    }

    /// A 2 GiB file named .png was read whole before its signature was checked.
    func testHugeFileIsRefusedWithoutBeingRead() throws {
        let big = work.appendingPathComponent("big.png")
        XCTAssertTrue(FileManager.default.createFile(atPath: big.path, contents: Data(PNGBuilder.signature)))
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 2 << 30)
        try handle.close()
        let run = try MeasuredRun.run(Self.executable, ["--mode", "caption", "--quiet", big.path] + modelArguments,
                                      environment: ["HF_HUB_CACHE": work.appendingPathComponent("hub").path], addressSpaceLimitMiB: 4096)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("over the limit"), run.stderr)
        XCTAssertLessThan(run.peakKiB, 400 << 10, "peak resident memory \(run.peakKiB) KiB")
    }
}

/// Data a reader thread received, awaited by the test.
final class Received: @unchecked Sendable {
    // @unchecked: `data` is only touched under `condition`.
    private let condition = NSCondition()
    private var data: Data?

    func set(_ value: Data) {
        condition.lock()
        data = value
        condition.signal()
        condition.unlock()
    }

    /// The data, once it came (empty after 30 s without it).
    func wait() -> Data {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(30)
        while data == nil && condition.wait(until: deadline) {}
        return data ?? Data()
    }
}

/// The `S_IFMT` bits of the file at `path` (links followed).
func fileType(_ path: String) -> mode_t {
    var info = stat()
    return stat(path, &info) == 0 ? info.st_mode & S_IFMT : 0
}
