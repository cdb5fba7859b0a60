import ClipInterrogator
import Foundation
import TestSupport
import XCTest

/// WebDataset shards read in place, brace patterns, and shards from Slurm and
/// Kubernetes environments.
final class ScaleInputTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A tar of `files` (path → bytes) written by the system's `tar` in `format`.
    func tar(_ name: String, _ files: [(String, Data)], format: String = "gnu") throws -> URL {
        let source = directory.appendingPathComponent(name + ".d")
        for (path, data) in files {
            let url = source.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        let archive = directory.appendingPathComponent(name)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar", "--format=\(format)", "-cf", archive.path, "-C", source.path] + files.map(\.0)
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "tar")
        return archive
    }

    /// The shard's samples as batch items; fails the test on a listing error.
    func samples(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> [BatchItem] {
        let (items, error) = try WebDataset.items(in: url)
        XCTAssertNil(error, file: file, line: line)
        return items
    }

    /// The bytes the item's image member holds.
    func bytes(_ item: BatchItem) throws -> Data {
        let member = try XCTUnwrap(item.member)
        let handle = try FileHandle(forReadingFrom: item.url)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(member.offset))
        return try handle.read(upToCount: member.size) ?? Data()
    }

    func testSamplesAreGroupedByKeyWithTheirFirstImage() throws {
        let long = String(repeating: "d", count: 120) + "/sample"
        for format in ["gnu", "pax"] {
            let url = try tar("s-\(format).tar", [
                ("000001.jpg", Data("one".utf8)), ("000001.txt", Data("caption".utf8)),
                ("000002.txt", Data("no image".utf8)),
                ("dir/000003.seg.PNG", Data("three".utf8)), ("dir/000003.jpg", Data("second image".utf8)),
                ("\(long).jpeg", Data("long name".utf8)), ("empty.png", Data()),
            ], format: format)
            let found = try samples(url)
            XCTAssertEqual(found.map(\.name), ["000001", "dir/000003", long, "empty"], format)
            XCTAssertEqual(try found.map(bytes), [Data("one".utf8), Data("three".utf8), Data("long name".utf8), Data()], format)
        }
        // ustar splits long paths into prefix + name.
        let ustar = try tar("s-ustar.tar", [("\(String(repeating: "p", count: 90))/\(String(repeating: "n", count: 60)).jpg", Data("x".utf8))],
                            format: "ustar")
        XCTAssertEqual(try samples(ustar).map(\.name), ["\(String(repeating: "p", count: 90))/\(String(repeating: "n", count: 60))"])
    }

    func testCorruptArchivesFailWithTheOffendingHeader() throws {
        let good = try Data(contentsOf: try tar("good.tar", [("a.jpg", Data(repeating: 7, count: 1000)), ("b.jpg", Data("b".utf8))]))
        func check(_ bytes: Data, _ expected: String, samplesBefore: Int, file: StaticString = #filePath, line: UInt = #line) throws {
            let url = directory.appendingPathComponent("bad-\(UUID().uuidString).tar")
            try bytes.write(to: url)
            let (items, error) = try WebDataset.items(in: url)
            XCTAssertTrue(error.map { "\($0)".contains(expected) } ?? false, "\(String(describing: error))", file: file, line: line)
            XCTAssertEqual(items.count, samplesBefore, file: file, line: line)
        }
        var checksum = good
        checksum[1536 + 10] ^= 1 // the second header (after a.jpg's 1000 bytes, padded to 1024)
        try check(checksum, "tar header at byte 1536: checksum mismatch", samplesBefore: 1)
        try check(good.prefix(700), "member a.jpg truncated", samplesBefore: 0)
        try check(good.prefix(1536 + 100), "tar header at byte 1536: truncated header", samplesBefore: 1)
        // A header claiming 2^62 bytes (base-256 size) with a valid checksum.
        var huge = [UInt8](good.prefix(512))
        huge.replaceSubrange(124..<136, with: [0x80, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0])
        huge.replaceSubrange(148..<156, with: Array(repeating: 32, count: 8))
        let sum = huge.reduce(0) { $0 + Int($1) }
        huge.replaceSubrange(148..<156, with: Array(String(format: "%06o\u{0} ", sum).utf8))
        try check(Data(huge), "truncated", samplesBefore: 0)
    }

    func testOversizedMembersAreSkippedAndReported() throws {
        // A sparse 300 MiB member: reported, never read into memory.
        let source = directory.appendingPathComponent("big.d")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let big = source.appendingPathComponent("big.jpg")
        XCTAssertTrue(FileManager.default.createFile(atPath: big.path, contents: nil))
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 300 << 20)
        try handle.close()
        try Data("small".utf8).write(to: source.appendingPathComponent("small.png"))
        let archive = directory.appendingPathComponent("big.tar")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar", "-cf", archive.path, "-C", source.path, "big.jpg", "small.png"]
        try process.run()
        process.waitUntilExit()
        let found = try samples(archive)
        XCTAssertEqual(found.map(\.name), ["big", "small"])
        XCTAssertThrowsError(try found[0].loadImage(), "the oversized member is refused unread") { error in
            XCTAssertTrue("\(error)".contains("over the 256 MiB member limit"), "\(error)")
        }
        XCTAssertEqual(try bytes(found[1]), Data("small".utf8))
    }

    func testBracePatternsExpandAsWebDatasetDoes() throws {
        XCTAssertEqual(try WebDataset.expand("shard-{00000..00003}.tar"),
                       ["shard-00000.tar", "shard-00001.tar", "shard-00002.tar", "shard-00003.tar"])
        XCTAssertEqual(try WebDataset.expand("{train,val}-{8..10}.tar"),
                       ["train-8.tar", "train-9.tar", "train-10.tar", "val-8.tar", "val-9.tar", "val-10.tar"])
        XCTAssertEqual(try WebDataset.expand("plain.tar"), ["plain.tar"])
        for bad in ["a-{1..", "a-}.tar", "a-{5..3}.tar", "a-{0..99999999}.tar"] {
            XCTAssertThrowsError(try WebDataset.expand(bad), bad)
        }
        XCTAssertEqual(WebDataset.keyAndExtension("a/b.c/d.seg.png").key, "a/b.c/d")
        XCTAssertEqual(WebDataset.keyAndExtension("a/b.c/d.seg.png").extension, "seg.png")
    }

    func testShardsComeFromSlurmKubernetesOrTheCommandLine() throws {
        XCTAssertEqual(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"]),
                       try Shard(index: 4, count: 8))
        XCTAssertEqual(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "8"], count: 8),
                       try Shard(index: 0, count: 8))
        XCTAssertEqual(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "15"], count: 16), try Shard(index: 15, count: 16))
        XCTAssertThrowsError(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "3"]))
        XCTAssertThrowsError(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "16"], count: 16))
        XCTAssertThrowsError(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "8"]))
        XCTAssertThrowsError(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "8"], count: 4))
        XCTAssertThrowsError(try Shard.fromEnvironment([:])) { XCTAssertEqual($0 as? ShardError, .noEngine) }
        XCTAssertEqual(try Shard(parsing: "2/4"), try Shard(index: 1, count: 4))
        for bad in ["0/4", "-1/4", "1/x/4", "5/4", "1/", "/4", "a/b", "1/0"] {
            XCTAssertThrowsError(try Shard(parsing: bad), bad)
        }
        XCTAssertEqual(try Shard(index: 3, count: 16).outputURL(for: URL(fileURLWithPath: "/data/out.jsonl")).path,
                       "/data/out-00003-of-00016.jsonl")
    }
}
