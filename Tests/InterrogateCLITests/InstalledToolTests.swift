import Foundation
import XCTest

/// The command as a user installs and calls it: copied away from its build
/// folder, from an installation prefix through a symbolic link, with the
/// reference run_cli.py's options, its version, its offline message and its
/// progress off a terminal.
extension CLITests {
    static let resourceBundle = "swift-clip-interrogator_ClipInterrogator.resources"

    var installedRunArguments: [String] {
        ["--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
         "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
         "--cache-dir", Self.cache.path, "--offline", "--quiet", "--mode", "fast",
         Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path]
    }

    func testACopiedBinaryFindsItsDataOrSaysWhereItLooked() throws {
        let bin = work.appendingPathComponent("copy/bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let copy = bin.appendingPathComponent("interrogate")
        try FileManager.default.copyItem(at: Self.executable, to: copy)

        // Alone: a clear error naming where it looked, not a crash.
        let alone = try interrogate(installedRunArguments, models: false, executable: copy)
        XCTAssertEqual(alone.status, 1, "an error exit, not a trap: \(alone.stderr)")
        XCTAssertTrue(alone.stderr.contains("the reference's label lists not found"), alone.stderr)
        XCTAssertTrue(alone.stderr.contains(bin.appendingPathComponent(Self.resourceBundle).path), alone.stderr)
        XCTAssertTrue(alone.stderr.contains("install.sh"), alone.stderr)

        // An installation's layout, called through a symbolic link elsewhere.
        let share = work.appendingPathComponent("copy/share/clip-interrogator-swift")
        try FileManager.default.createDirectory(at: share, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.executable.deletingLastPathComponent().appendingPathComponent(Self.resourceBundle + "/data"),
                                         to: share.appendingPathComponent("labels"))
        let link = work.appendingPathComponent("interrogate-link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: copy)
        let installed = try interrogate(installedRunArguments, models: false, executable: link)
        let reference = try interrogate(Array(installedRunArguments.dropFirst(7)))
        XCTAssertEqual(installed.status, 0, installed.stderr)
        XCTAssertEqual(installed.stdout, reference.stdout, "the installed copy gives the build's result")
        XCTAssertFalse(installed.stdout.isEmpty)
    }

    func testReferenceOptionsAndItsDescCSV() throws {
        let folder = try imageFolder(3)
        let run = try interrogate(["-f", folder.path, "-m", "caption"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout, "", "results go to the folder's desc.csv, as run_cli.py writes them")
        XCTAssertTrue(run.stderr.contains("desc.csv"), "says where the results went: \(run.stderr)")
        let rows = try String(contentsOf: folder.appendingPathComponent("desc.csv"), encoding: .utf8).components(separatedBy: "\r\n")
        XCTAssertEqual(rows.first, "image,prompt,error", "the reference's columns, then the error column of failed images")
        XCTAssertEqual(rows.filter { !$0.isEmpty }.count, 1 + 3)

        let image = Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path
        let short = try interrogate(["-i", image, "-c", Self.fixtures.appendingPathComponent("interrogator/clip").path,
                                     "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
                                     "--cache-dir", Self.cache.path, "--offline", "--quiet", "-m", "fast"], models: false)
        let long = try interrogate(["--mode", "fast", "--quiet", image])
        XCTAssertEqual(short.status, 0, short.stderr)
        XCTAssertEqual(short.stdout, long.stdout)
    }

    func testFlavorKnobsReachTheModes() throws {
        let image = Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path
        let caption = try interrogate(["--mode", "caption", "--quiet", image]).stdout.trimmingCharacters(in: .newlines)
        let fast = try interrogate(["--mode", "fast", "--quiet", "--max-flavors", "2", image])
        XCTAssertEqual(fast.status, 0, fast.stderr)
        let prompt = fast.stdout.trimmingCharacters(in: .newlines)
        XCTAssertTrue(prompt.hasPrefix(caption + ", "), prompt)
        XCTAssertEqual(prompt.dropFirst(caption.count + 2).components(separatedBy: ", ").count, 2, "two flavors: \(prompt)")
        XCTAssertEqual(try interrogate(["--max-flavors", "0", image]).status, 64)
        XCTAssertEqual(try interrogate(["--chunk-size", "0", image]).status, 64)
    }

    func testHelpShowsTheReferenceOptions() throws {
        let help = try interrogate(["--help"], models: false)
        XCTAssertEqual(help.status, 0)
        for option in ["-i, --image", "-f, --folder", "-m, --mode", "-c, --clip", "--min-flavors", "--max-flavors",
                       "--caption-max-length", "--chunk-size", "--flavor-intermediate-count", "--version", "desc.csv", "turbo"] {
            XCTAssertTrue(help.stdout.contains(option), "help mentions \(option)")
        }
    }

    func testVersionNamesTheBLASKernel() throws {
        let run = try interrogate(["--version"], models: false)
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n")
        XCTAssertEqual(lines.first.map(String.init)?.hasPrefix("interrogate "), true, run.stdout)
        XCTAssertTrue(lines.count == 2 && lines[1].hasPrefix("BLAS: ") && lines[1].contains("core"), run.stdout)
        // OpenBLAS's own configuration (before the ';') names the kernel in force too, read
        // after the automatic choice: not the one OpenBLAS started with.
        if lines.count == 2, lines[1].hasPrefix("BLAS: OpenBLAS"), let config = lines[1].split(separator: ";").first,
           let core = lines[1].split(separator: " ").last {
            XCTAssert(config.lowercased().split(separator: " ").contains(Substring(core.lowercased())), run.stdout)
        }
    }

    func testOfflineErrorNamesWhatMadeItOffline() throws {
        let image = Self.fixtures.appendingPathComponent("interrogator/images/image0.png").path
        let flag = try interrogate(["--clip", "ViT-B-32/openai", "--mode", "analyze", "--offline", "--quiet", image], models: false)
        XCTAssertNotEqual(flag.status, 0)
        XCTAssertTrue(flag.stderr.contains("--offline"), flag.stderr)
        let variable = try interrogate(["--clip", "ViT-B-32/openai", "--mode", "analyze", "--quiet", image], models: false,
                                       environment: ["HF_HUB_OFFLINE": "1"])
        XCTAssertNotEqual(variable.status, 0)
        XCTAssertTrue(variable.stderr.contains("HF_HUB_OFFLINE=1") && !variable.stderr.contains("--offline"), variable.stderr)
    }

    func testProgressOffATerminalIsPlainLinesAndQuietIsSilent() throws {
        let images = ["interrogator/images/image0.png", "interrogator/images/image1.jpg"].map { Self.fixtures.appendingPathComponent($0).path }
        let arguments = ["--clip", Self.fixtures.appendingPathComponent("interrogator/clip").path,
                         "--caption", Self.fixtures.appendingPathComponent("blip/tiny-base").path,
                         "--cache-dir", Self.cache.path, "--offline", "--mode", "caption"] + images
        let shown = try interrogate(arguments, models: false)
        XCTAssertEqual(shown.status, 0, shown.stderr)
        let lines = shown.stderr.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("[1/2] \(images[0])") }, shown.stderr)
        XCTAssertTrue(lines.contains { $0.hasPrefix("[2/2] \(images[1])") && $0.contains("img/s") }, shown.stderr)
        XCTAssertFalse(shown.stderr.contains("\u{1B}["), "no terminal control sequences off a terminal")
        XCTAssertFalse(shown.stderr.contains("\r"))
        let quiet = try interrogate(arguments + ["--quiet"], models: false)
        XCTAssertEqual(quiet.status, 0)
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(quiet.stdout, shown.stdout, "progress never touches standard output")
    }
}
