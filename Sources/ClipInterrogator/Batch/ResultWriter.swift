import Foundation
import NeuralCore

/// The formats results are written in.
public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    /// The prompt alone for one image; "image: prompt" lines for several.
    case text
    /// A JSON array of result objects (rewritten atomically after each image).
    case json
    /// One JSON object per line, appended as each image finishes.
    case jsonl
    /// `image,prompt` rows, compatible with the reference's `desc.csv`
    /// (Python `csv.writer`: minimal quoting, `\r\n` line ends).
    case csv
}

/// One image's entry in a results file (failed images are reported, not written).
public struct BatchRecord: Codable, Sendable, Equatable {
    /// The image as given (relative to the folder for folder runs).
    public var image: String
    /// The interrogation result.
    public var result: InterrogationResult

    /// Creates a record.
    public init(image: String, result: InterrogationResult) {
        self.image = image
        self.result = result
    }

    /// The text the `text` and `csv` formats show: the prompt, else the negative
    /// prompt, else a one-line analysis summary.
    public var summary: String {
        if let prompt = result.prompt { return prompt }
        if let negative = result.negativePrompt { return negative }
        if let analysis = result.analysis {
            return analysis.map { table in
                "\(table.table): " + table.matches.map { "\($0.label) (\(String(format: "%.4f", $0.similarity)))" }.joined(separator: ", ")
            }.joined(separator: "; ")
        }
        return ""
    }
}

/// Streams results to a file (or standard output) as each image finishes, so an
/// interrupted run keeps everything it finished; can resume a file a previous
/// run left behind.
public final class ResultWriter {
    /// The format.
    public let format: OutputFormat
    private let url: URL?
    private var records: [BatchRecord] = []
    private var handle: FileHandle?
    /// Whether this writer prints one bare prompt (single-image text runs).
    private let bare: Bool

    /// A writer to `url` (standard output when nil). With `resume`, records
    /// already in the file are kept (see ``completedImages``), a torn last line
    /// from a killed run is dropped, and new records are appended.
    public init(format: OutputFormat, url: URL?, resume: Bool, singleImage: Bool) throws {
        self.format = format
        self.url = url
        bare = singleImage && format == .text && !resume
        guard let url else { return }
        if resume, FileManager.default.fileExists(atPath: url.path) {
            records = try Self.read(url, format: format)
        }
        switch format {
        case .json:
            try rewriteJSON()
        case .text, .jsonl, .csv:
            try rewriteLines(url)
            handle = try FileHandle(forWritingTo: url)
            try handle?.seekToEnd()
        }
    }

    /// The images whose records the resumed file already holds.
    public var completedImages: Set<String> { Set(records.map(\.image)) }

    /// Appends one record and makes it durable before returning.
    public func write(_ record: BatchRecord) throws {
        records.append(record)
        if url == nil {
            // Standard output: JSON is printed whole by close(); the rest line by line.
            if format != .json { print(line(record), terminator: format == .csv ? "" : "\n") }
            return
        }
        if format == .json {
            try rewriteJSON()
        } else {
            try handle?.write(contentsOf: Data(line(record).utf8 + (format == .csv ? [] : [10])))
            try handle?.synchronize()
        }
    }

    /// Finishes the output (prints the JSON array when writing to standard output).
    public func close() throws {
        if url == nil && format == .json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(records), as: UTF8.self))
        }
        try handle?.close()
        handle = nil
    }

    /// Standard-output header for CSV.
    public func writeHeaderIfNeeded() {
        if url == nil && format == .csv { print("image,prompt", terminator: "\r\n") }
    }

    // MARK: Encoding

    private func line(_ record: BatchRecord) -> String {
        switch format {
        case .text: bare ? record.summary : "\(record.image): \(record.summary)"
        case .jsonl, .json: Self.jsonLine(record)
        case .csv: Self.csvRow([record.image, record.summary])
        }
    }

    static func jsonLine(_ record: BatchRecord) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(record)) ?? Data(), as: UTF8.self)
    }

    /// A CSV row as Python's `csv.writer` (QUOTE_MINIMAL) writes it.
    static func csvRow(_ fields: [String]) -> String {
        fields.map { field in
            let needsQuotes = field.contains(",") || field.contains("\"") || field.contains("\n") || field.contains("\r")
            return needsQuotes ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\r\n"
    }

    private func rewriteJSON() throws {
        guard let url else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(records)
        try writeAtomically(to: url.path) { write in try data.withUnsafeBytes { try write($0) } }
    }

    /// Rewrites the file with exactly the kept records (dropping a torn last line).
    private func rewriteLines(_ url: URL) throws {
        var text = format == .csv ? Self.csvRow(["image", "prompt"]) : ""
        for record in records { text += line(record) + (format == .csv ? "" : "\n") }
        let data = Data(text.utf8)
        try writeAtomically(to: url.path) { write in try data.withUnsafeBytes { try write($0) } }
    }

    // MARK: Reading (resume)

    static func read(_ url: URL, format: OutputFormat) throws -> [BatchRecord] {
        let data = try Data(contentsOf: url)
        switch format {
        case .json:
            return (try? JSONDecoder().decode([BatchRecord].self, from: data)) ?? []
        case .jsonl:
            return completeLines(data).compactMap { try? JSONDecoder().decode(BatchRecord.self, from: Data($0.utf8)) }
        case .text:
            return completeLines(data).compactMap { line in
                guard let range = line.range(of: ": ") else { return nil }
                return summaryRecord(image: String(line[..<range.lowerBound]), summary: String(line[range.upperBound...]))
            }
        case .csv:
            return parseCSV(String(decoding: data, as: UTF8.self)).dropFirst().compactMap { row in
                row.count == 2 ? summaryRecord(image: row[0], summary: row[1]) : nil
            }
        }
    }

    /// A record read back from a text or CSV file, which keep only the summary
    /// text: it is carried as the prompt, so rewriting the file reproduces it.
    private static func summaryRecord(image: String, summary: String) -> BatchRecord {
        BatchRecord(image: image, result: InterrogationResult(mode: .best, prompt: summary))
    }

    /// The lines of `data` that end in a newline (a torn last line is dropped).
    static func completeLines(_ data: Data) -> [String] {
        var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        lines.removeLast() // the text after the last newline: empty, or torn
        return lines.filter { !$0.isEmpty }
    }

    /// Complete CSV rows (RFC 4180 quoting); a torn final row is dropped.
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, atFieldStart = true
        var characters = Array(text.unicodeScalars)[...]
        while let c = characters.popFirst() {
            if quoted {
                if c == "\"" {
                    if characters.first == "\"" { characters.removeFirst(); field.unicodeScalars.append(c) } else { quoted = false }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" && atFieldStart {
                quoted = true
            } else if c == "," {
                row.append(field); field = ""; atFieldStart = true; continue
            } else if c == "\r" {
                continue
            } else if c == "\n" {
                row.append(field); rows.append(row); row = []; field = ""; atFieldStart = true; continue
            } else {
                field.unicodeScalars.append(c)
            }
            atFieldStart = false
        }
        return rows
    }
}
