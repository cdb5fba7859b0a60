import Foundation

/// An error raised while loading a tokenizer's files.
///
/// Every case names the file it is about, so a message points straight at the checkpoint file
/// that is missing or damaged.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file does not exist.
    case missingFile(URL)
    /// The file exists but could not be read, or is not valid UTF-8.
    case unreadableFile(URL, reason: String)
    /// The vocabulary file is not in the expected format, or lacks a required token.
    case invalidVocabulary(URL, reason: String)
    /// A line of the merges file is malformed or names a token the vocabulary lacks.
    /// `line` is 1-based.
    case invalidMerges(URL, line: Int, reason: String)

    /// A one-line human-readable description that names the file.
    public var description: String {
        switch self {
        case .missingFile(let url):
            return "tokenizer file not found: \(url.path)"
        case .unreadableFile(let url, let reason):
            return "cannot read tokenizer file \(url.path): \(reason)"
        case .invalidVocabulary(let url, let reason):
            return "invalid vocabulary file \(url.path): \(reason)"
        case .invalidMerges(let url, let line, let reason):
            return "invalid merges file \(url.path), line \(line): \(reason)"
        }
    }
}
