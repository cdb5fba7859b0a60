import Foundation
import TestSupport
import XCTest

/// Datasets at scale as a cluster would run them: WebDataset shards split over
/// processes by Kubernetes Indexed Job and Slurm array variables, killed and
/// resumed, then merged and checked against one process doing everything.
final class ScaleCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = FileManager.default.temporaryDirectory.appendingPathComponent("scale-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    /// Four tar shards of `count` generated 48×40 grey PNGs (each with a `.txt`
    /// member beside it, as img2dataset writes them), the third shard also holding
    /// a corrupt image member.
    func makeShards(count: Int) throws {
        let source = work.appendingPathComponent("source")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        var members: [[String]] = Array(repeating: [], count: 4)
        for i in 0..<count {
            let key = String(format: "%06d", i)
            try Data(PNGBuilder.gray(width: 48, height: 40) { y in UInt8(truncatingIfNeeded: (y * (i % 7 + 1) * 9 + i * 37)) })
                .write(to: source.appendingPathComponent(key + ".png"))
            try Data("caption \(i)".utf8).write(to: source.appendingPathComponent(key + ".txt"))
            members[i % 4] += [key + ".png", key + ".txt"]
        }
        try Data("not an image".utf8).write(to: source.appendingPathComponent("corrupt.jpg"))
        members[2].append("corrupt.jpg")
        for (index, files) in members.enumerated() {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["tar", "-cf", work.appendingPathComponent("shard-\(index).tar").path, "-C", source.path] + files
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
        }
    }

    /// The demo interrogation of the shards in fast mode, as JSON lines.
    func command(_ extra: [String]) -> [String] {
        ["--demo", "--quiet", "--webdataset", work.appendingPathComponent("shard-{0..3}.tar").path, "--mode", "fast",
         "--format", "jsonl", "--batch-size", "3"] + extra
    }

    func process(_ arguments: [String], environment: [String: String] = [:]) -> Process {
        let process = Process()
        process.executableURL = CLITests.executable
        process.arguments = arguments
        var base = ProcessInfo.processInfo.environment
        for name in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"] { base[name] = nil }
        process.environment = base.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    func lines(_ url: URL) -> [String] {
        ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func testShardsKilledResumedAndMergedEqualOneProcess() throws {
        try makeShards(count: 96)
        let single = work.appendingPathComponent("single.jsonl")
        let whole = process(command(["--output", single.path]))
        try whole.run()
        whole.waitUntilExit()
        XCTAssertEqual(whole.terminationStatus, 1, "the corrupt member fails its image")
        let expected = lines(single)
        XCTAssertEqual(expected.count, 97, "every key once, the corrupt one as an error record")
        XCTAssertEqual(expected.filter { $0.contains("\"error\"") }.count, 1)

        // Shards 0-3 as a Kubernetes Indexed Job (completions 8), 4-7 as a Slurm
        // array --array=1-8; all eight at once.
        let output = work.appendingPathComponent("out.jsonl")
        func environment(_ index: Int) -> [String: String] {
            index < 4 ? ["JOB_COMPLETION_INDEX": "\(index)"]
                : ["SLURM_ARRAY_TASK_ID": "\(index + 1)", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"]
        }
        func arguments(_ index: Int) -> [String] {
            command(["--output", output.path, "--resume", "--shard", "auto"] + (index < 4 ? ["--shard-count", "8"] : []))
        }
        func shardFile(_ index: Int) -> URL { work.appendingPathComponent(String(format: "out-%05d-of-00008.jsonl", index)) }
        let processes = (0..<8).map { process(arguments($0), environment: environment($0)) }
        for process in processes { try process.run() }
        // Kill shards 2 and 5 (one of each engine) once they have written a record.
        var killed: [Int: Int] = [:]
        let deadline = Date() + 120
        while killed.count < 2 && Date() < deadline {
            for index in [2, 5] where killed[index] == nil && processes[index].isRunning && !lines(shardFile(index)).isEmpty {
                kill(processes[index].processIdentifier, SIGKILL)
                killed[index] = lines(shardFile(index)).count
            }
            usleep(5_000)
        }
        for process in processes { process.waitUntilExit() }
        for index in [2, 5] {
            XCTAssertEqual(processes[index].terminationReason, .uncaughtSignal, "shard \(index) was killed mid-run")
        }
        let partial = [2, 5].map { lines(shardFile($0)).count }
        // The killed shards rerun with --resume and finish.
        for index in [2, 5] {
            let rerun = process(arguments(index), environment: environment(index))
            try rerun.run()
            rerun.waitUntilExit()
            XCTAssertTrue([0, 1].contains(rerun.terminationStatus))
        }
        for (index, before) in zip([2, 5], partial) {
            XCTAssertGreaterThan(lines(shardFile(index)).count, before, "shard \(index) went on from where it was killed")
        }
        // Every shard file is its own; together they hold every key once.
        let files = (0..<8).map(shardFile)
        XCTAssertEqual(files.map { lines($0).count }.reduce(0, +), 97)
        let merged = work.appendingPathComponent("merged.jsonl")
        let merge = process(["merge", "--webdataset", work.appendingPathComponent("shard-{0..3}.tar").path,
                             "--output", merged.path] + files.map(\.path))
        try merge.run()
        merge.waitUntilExit()
        XCTAssertEqual(merge.terminationStatus, 0)
        XCTAssertEqual(lines(merged), expected, "the merged shards equal one process's output, record for record")

        // A merge missing a shard, or with a shard's keys in a second file, is
        // refused and writes nothing.
        let refused = work.appendingPathComponent("refused.jsonl")
        let copy = work.appendingPathComponent("copy-of-shard-0.jsonl")
        try FileManager.default.copyItem(at: files[0], to: copy)
        for shards in [Array(files.dropLast()), files + [copy]] {
            let bad = process(["merge", "--webdataset", work.appendingPathComponent("shard-{0..3}.tar").path,
                               "--output", refused.path] + shards.map(\.path))
            try bad.run()
            bad.waitUntilExit()
            XCTAssertEqual(bad.terminationStatus, 1)
            XCTAssertFalse(FileManager.default.fileExists(atPath: refused.path))
        }
    }

    func testBatchesEqualOneImageAtATimeAndFilesComeFromAList() throws {
        try makeShards(count: 10)
        var outputs: [[String]] = []
        for batch in ["1", "4"] {
            let url = work.appendingPathComponent("batch-\(batch).jsonl")
            let run = process(command(["--output", url.path, "--batch-size", batch]))
            try run.run()
            run.waitUntilExit()
            outputs.append(lines(url))
        }
        XCTAssertEqual(outputs[0].count, 11)
        XCTAssertEqual(outputs[0], outputs[1], "batches of 4 write what one image at a time writes")

        // --files-from - names the files as listed.
        let folder = Self.demoImages
        let list = (0..<3).map { folder.appendingPathComponent(String(format: "%02d.png", $0)).path }
        let run = process(["--demo", "--quiet", "--files-from", "-", "--mode", "caption", "--format", "jsonl"])
        let input = Pipe(), out = Pipe()
        run.standardInput = input
        run.standardOutput = out
        try run.run()
        input.fileHandleForWriting.write(Data((list.joined(separator: "\n") + "\n\n").utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        XCTAssertEqual(run.terminationStatus, 0)
        let names = text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["image"] as? String
        }
        XCTAssertEqual(names, list)
    }

    /// Workers share models and label caches on a read-only volume: a complete
    /// cache folder that cannot be written is used as it is, without a write
    /// attempt or a warning (checked as a user who cannot write it).
    func testAReadOnlyCompleteCacheIsUsedWithoutWriting() throws {
        let cache = work.appendingPathComponent("cache")
        let image = Self.demoImages.appendingPathComponent("00.png").path
        let arguments = ["--demo", "--mode", "fast", "--cache-dir", cache.path, image]
        let filled = process(arguments)
        let first = Pipe()
        filled.standardOutput = first
        try filled.run()
        let expected = first.fileHandleForReading.readDataToEndOfFile()
        filled.waitUntilExit()
        XCTAssertEqual(filled.terminationStatus, 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        XCTAssertFalse(files.isEmpty, "the first run filled the cache")
        for file in files { try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: cache.appendingPathComponent(file).path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: cache.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: cache.path) }
        // Root writes anywhere: then the second run is nobody's.
        let asNobody = getuid() == 0
        let reader = asNobody ? process(["--reuid=65534", "--regid=65534", "--clear-groups", CLITests.executable.path] + arguments)
            : process(arguments)
        if asNobody { reader.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv") }
        reader.environment?["HOME"] = "/nonexistent"
        let out = Pipe(), err = Pipe()
        reader.standardOutput = out
        reader.standardError = err
        try reader.run()
        let output = out.fileHandleForReading.readDataToEndOfFile(), errors = err.fileHandleForReading.readDataToEndOfFile()
        reader.waitUntilExit()
        XCTAssertEqual(reader.terminationStatus, 0, String(decoding: errors, as: UTF8.self))
        XCTAssertEqual(output, expected)
        XCTAssertFalse(String(decoding: errors, as: UTF8.self).contains("warning"), String(decoding: errors, as: UTF8.self))
    }

    static var demoImages: URL { CLITests.fixtures.appendingPathComponent("demo/heldout") }
}
