import Foundation
import NeuralCore

/// Reading results files back: what resume continues and what a merge of shard
/// outputs combines. Strict: a file that is not wholly records of its format is
/// refused, never half-read.
extension ResultWriter {
    /// The records of the results file at `url` in `format` (json, jsonl or csv; a
    /// torn last record of a killed run is left out).
    /// - Throws: ``ResultWriterError/notUnderstood(path:line:reason:)`` for anything
    ///   but records of `format`; ``ResultWriterError/notResumable(path:reason:)``
    ///   for the text format; ``ResultWriterError/io(path:reason:)``.
    public static func records(in url: URL, format: OutputFormat) throws -> [BatchRecord] {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError(url.path, "open") }
        defer { Foundation.close(fd) }
        return try read(fd, path: url.path, format: format).records
    }

    // MARK: Reading (resume)

    /// What a resumed file holds.
    struct Contents {
        /// The records, in order.
        var records: [BatchRecord]
        /// The bytes they fill (a torn last record of a killed run is after them).
        var length: Int
        /// A CSV file's columns.
        var csvColumns: [String]?
    }

    /// The records in the file open at `fd`.
    /// - Throws: ``ResultWriterError/notUnderstood(path:line:reason:)`` for
    ///   anything but records of `format`.
    static func read(_ fd: Int32, path: String, format: OutputFormat) throws -> Contents {
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0 else { throw ioError(path, "seek") }
        var data = Data(count: Int(size))
        let got = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(size), 0) }
        guard got == Int(size) else { throw ioError(path, "read") }
        return try parse(data, path: path, format: format)
    }

    /// The records of `data` in `format`.
    static func parse(_ data: Data, path: String, format: OutputFormat) throws -> Contents {
        func refuse(_ line: Int, _ reason: String) -> ResultWriterError { .notUnderstood(path: path, line: line, reason: reason) }
        guard !data.isEmpty else { return Contents(records: [], length: 0) }
        guard let text = String(validating: data, as: UTF8.self) else { throw refuse(0, "it is not UTF-8 text") }
        switch format {
        case .text:
            throw ResultWriterError.notResumable(path: path, reason: "text output cannot be read back unambiguously")
        case .json:
            do {
                return Contents(records: try JSONDecoder().decode([BatchRecord].self, from: data), length: data.count)
            } catch {
                throw refuse(0, "it is not a JSON array of records (\(reason(error)))")
            }
        case .jsonl:
            var records: [BatchRecord] = [], length = 0
            let bytes = Array(data)
            var start = 0, line = 0
            while start < bytes.count {
                line += 1
                guard let end = bytes[start...].firstIndex(of: 10) else {
                    // A killed run can leave part of its last record: `{"…` without a line end.
                    guard bytes[start...].starts(with: Array("{\"".utf8)) else { throw refuse(line, "it is not a JSON record") }
                    break
                }
                do {
                    records.append(try JSONDecoder().decode(BatchRecord.self, from: Data(bytes[start..<end])))
                } catch {
                    throw refuse(line, "it is not a record (\(reason(error)))")
                }
                start = end + 1
                length = start
            }
            return Contents(records: records, length: length)
        case .csv:
            let (rows, length, problem) = parseCSV(text)
            if let problem { throw refuse(problem.line, problem.reason) }
            guard let header = rows.first else {
                // Only a torn header: nothing to keep.
                guard Self.csvRow(csvHeader).hasPrefix(text) || Self.csvRow(["image", "prompt"]).hasPrefix(text) else {
                    throw refuse(1, "no CSV header")
                }
                return Contents(records: [], length: 0)
            }
            guard header == csvHeader || header == ["image", "prompt"] else {
                throw refuse(1, "the header is \(header), expected image,prompt,error (or the reference's image,prompt)")
            }
            var records: [BatchRecord] = []
            for (index, row) in rows.enumerated().dropFirst() {
                guard row.count == header.count else {
                    throw refuse(index + 1, "\(row.count) fields, expected \(header.count)")
                }
                if row.count == 3, !row[2].isEmpty {
                    guard row[1].isEmpty else { throw refuse(index + 1, "a row with both a prompt and an error") }
                    records.append(BatchRecord(image: row[0], error: row[2]))
                } else {
                    records.append(BatchRecord(image: row[0], result: InterrogationResult(mode: .best, prompt: row[1])))
                }
            }
            return Contents(records: records, length: length, csvColumns: header)
        }
    }

    /// A short reason for a decoding error, naming the key it is about.
    private static func reason(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return String(describing: error) }
        switch Checkpoint.describe(decoding, path: "") {
        case let .invalidValue(_, key, reason): return "\(key): \(reason)"
        case let .invalidJSON(_, reason): return reason
        case let other: return other.description
        }
    }

    /// Complete CSV rows (RFC 4180 quoting, `\r\n` or `\n` row ends), the length
    /// of text they fill (a torn last row is left out), and the first problem:
    /// a quote inside an unquoted field, text after a closing quote, or a bare
    /// `\r`. Rows are counted from 1.
    static func parseCSV(_ text: String) -> (rows: [[String]], length: Int, problem: (line: Int, reason: String)?) {
        var rows: [[String]] = [], row: [String] = [], field = String.UnicodeScalarView()
        var quoted = false, closedQuote = false, atFieldStart = true
        let scalars = Array(text.unicodeScalars)
        var index = 0, length = 0, bytes = 0 // bytes: UTF-8 length of scalars[..<index]
        func problem(_ reason: String) -> (rows: [[String]], length: Int, problem: (line: Int, reason: String)?) {
            (rows, length, (rows.count + 1, reason))
        }
        while index < scalars.count {
            let c = scalars[index]
            index += 1
            bytes += UTF8.width(c)
            if quoted {
                if c == "\"" {
                    if index < scalars.count && scalars[index] == "\"" {
                        field.append(c)
                        index += 1
                        bytes += 1
                    } else {
                        quoted = false
                        closedQuote = true
                    }
                } else {
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                guard atFieldStart else { return problem("a quote inside an unquoted field") }
                quoted = true
                atFieldStart = false
            case ",":
                row.append(String(field))
                field = String.UnicodeScalarView()
                atFieldStart = true
                closedQuote = false
            case "\r", "\n":
                if c == "\r" {
                    guard index < scalars.count else { return (rows, length, nil) } // torn after \r
                    guard scalars[index] == "\n" else { return problem("a carriage return outside quotes") }
                    index += 1
                    bytes += 1
                }
                row.append(String(field))
                rows.append(row)
                row = []
                field = String.UnicodeScalarView()
                atFieldStart = true
                closedQuote = false
                length = bytes
            default:
                guard !closedQuote else { return problem("text after a closing quote") }
                field.append(c)
                atFieldStart = false
            }
        }
        return (rows, length, nil)
    }
}
