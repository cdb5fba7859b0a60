import ArgumentParser
import ClipInterrogator
import Foundation

/// `interrogate merge`: one results file from the shard outputs of a sharded
/// run, after checking that every input the run was given appears exactly once.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interrogate merge",
        abstract: "Combine the outputs of a sharded run, checking that every input appears exactly once.",
        discussion: """
            Give the shards' result files and the run's inputs (the same --folder, --files-from, \
            --webdataset or -i options): the merge lists the inputs as the run did and refuses \
            (exit 1, writing nothing) when a key is missing, in two shard files, or not an input. \
            Within one file the last record of a key counts (a resumed run retries failed images). \
            Failed images are error records: they count as present and are kept.

            Example:
              interrogate merge --webdataset 'shards/{00000..00099}.tar' \\
                  --output captions.jsonl captions-*-of-00016.jsonl
            """)

    @Argument(help: "The shards' result files (json, jsonl or csv, by extension).")
    var results: [String]

    @OptionGroup(title: "The run's inputs (what every key is checked against)")
    var inputs: InputOptions

    @Option(name: .long, help: "The merged file.")
    var output: String

    @Option(name: .long, help: "json, jsonl or csv (default: by the output's extension).")
    var format: OutputFormat?

    @Flag(name: .long, help: "No summary line.")
    var quiet = false

    mutating func validate() throws {
        if results.isEmpty { throw ValidationError("give the shards' result files") }
        for (index, file) in results.enumerated() where results[..<index].contains(where: { ImageInputs.sameFile(URL(fileURLWithPath: $0), URL(fileURLWithPath: file)) }) {
            throw ValidationError("\(file) is given twice")
        }
        if Self.format(of: output, given: format) == nil { throw ValidationError("--output \(output): name it .jsonl, .json or .csv, or give --format") }
        if format == .text { throw ValidationError("--format text cannot be merged; use jsonl, json or csv") }
        for file in results where ImageInputs.sameFile(URL(fileURLWithPath: file), URL(fileURLWithPath: output)) {
            throw ValidationError("--output \(output) is one of the files to merge")
        }
    }

    func run() throws {
        var latest: [String: BatchRecord] = [:], fileOf: [String: String] = [:], order: [String] = []
        var duplicated: [String: Set<String>] = [:]
        for file in results {
            guard let fileFormat = Self.format(of: file, given: nil) else {
                throw ValidationError("\(file): not a .jsonl, .json or .csv results file")
            }
            let records: [BatchRecord]
            do { records = try ResultWriter.records(in: URL(fileURLWithPath: file), format: fileFormat) } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            for record in records {
                if let other = fileOf[record.image], other != file {
                    duplicated[record.image, default: [other]].insert(file)
                    continue
                }
                if latest[record.image] == nil { order.append(record.image) }
                latest[record.image] = record
                fileOf[record.image] = file
            }
        }
        var problems: [String] = duplicated.keys.sorted().map { "\($0): in \(duplicated[$0]!.sorted().joined(separator: " and "))" }
        if !inputs.isEmpty {
            let expected = try inputs.items().map(\.name)
            let expectedSet = Set(expected)
            problems += expected.filter { latest[$0] == nil }.map { "\($0): missing" }
            problems += order.filter { !expectedSet.contains($0) }.map { "\($0): not an input of the run (in \(fileOf[$0]!))" }
            order = expected.filter { latest[$0] != nil } + order.filter { !expectedSet.contains($0) }
        }
        guard problems.isEmpty else {
            let shown = problems.prefix(20).map { "  " + $0 }.joined(separator: "\n")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
            FileHandle.standardError.write(Data("error: the shards do not hold every input exactly once (\(problems.count) problems); nothing written\n\(shown)\(more)\n".utf8))
            throw ExitCode.failure
        }
        let writer = try ResultWriter(format: Self.format(of: output, given: format)!, url: URL(fileURLWithPath: output),
                                      resume: false, singleImage: false)
        for name in order { try writer.write(latest[name]!) }
        try writer.close()
        if !quiet {
            let failed = order.filter { latest[$0]!.failed }.count
            FileHandle.standardError.write(Data("merged \(order.count) records from \(results.count) files into \(output) (\(failed) failed images)\n".utf8))
        }
    }

    /// The results format of `path`: `given`, else by its extension.
    static func format(of path: String, given: OutputFormat?) -> OutputFormat? {
        given ?? ["jsonl": .jsonl, "json": .json, "csv": .csv][URL(fileURLWithPath: path).pathExtension.lowercased()]
    }
}
