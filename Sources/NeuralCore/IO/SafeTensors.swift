import Foundation

/// Why a safetensors file was rejected. Carried by ``SafeTensorsError``.
public enum SafeTensorsProblem: Sendable, Equatable {
    /// The file is shorter than the 8-byte header length.
    case fileTooSmall(size: Int)
    /// The declared header length exceeds the format's 100 MB cap.
    case headerTooLarge(length: UInt64)
    /// The declared header length runs past the end of the file.
    case headerBeyondFile(length: UInt64, fileSize: Int)
    /// The header is not valid UTF-8.
    case headerNotUTF8
    /// The header does not start with `{`.
    case headerNotObject
    /// The header is not valid JSON, or not an object of the expected form.
    case invalidJSON(String)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata
    /// A tensor entry lacks a field or has one of the wrong type.
    case invalidEntry(String)
    /// A tensor declares a dtype the format does not define.
    case unknownDType(String)
    /// The shape's element count times the dtype size overflows.
    case shapeOverflow(shape: [Int])
    /// The byte range does not hold exactly shape × dtype size bytes.
    case sizeMismatch(shape: [Int], dtype: DType, expectedBytes: Int, rangeBytes: Int)
    /// The byte range's end precedes its start.
    case invalidRange(start: Int, end: Int)
    /// The byte range reaches past the end of the data section.
    case rangeOutOfBounds(end: Int, dataSize: Int)
    /// The tensor's range overlaps, or leaves a gap after, the previous tensor's
    /// (ranges must tile the data section in order).
    case rangeNotContiguous(start: Int, expectedStart: Int)
    /// The tensors together do not cover the whole data section.
    case dataNotCovered(covered: Int, dataSize: Int)
    /// The requested tensor is not in the file.
    case tensorNotFound
}

/// A safetensors file that could not be read or written, naming the file and,
/// where one is at fault, the tensor.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file's path.
    public let path: String
    /// The tensor concerned, when the problem is one tensor's.
    public let tensor: String?
    /// What is wrong.
    public let problem: SafeTensorsProblem

    /// Creates an error about `path` (and `tensor`, if one is at fault).
    public init(path: String, tensor: String? = nil, problem: SafeTensorsProblem) {
        self.path = path
        self.tensor = tensor
        self.problem = problem
    }

    /// A one-line explanation naming file and tensor.
    public var description: String {
        let subject = tensor.map { "\(path): tensor '\($0)'" } ?? path
        return "invalid safetensors file \(subject): \(problem)"
    }
}

/// A read-only, memory-mapped safetensors file.
///
/// Opening maps the file and validates the whole header before anything is
/// trusted: the 8-byte little-endian header length (capped at 100 MB), UTF-8 JSON,
/// known dtypes, `shape` element count × dtype size equal to each byte range, every
/// range inside the file, and the ranges tiling the data section exactly with no
/// overlap or gap (the rules of the reference Rust implementation). Tensors are
/// then handed out lazily as views into the mapping (``tensor(_:)``).
public final class SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable, Equatable {
        /// The element type.
        public let dtype: DType
        /// The shape.
        public let shape: [Int]
        /// The byte range within the data section (after the header).
        public let dataOffsets: Range<Int>
    }

    /// The maximum header length the format allows.
    public static let maxHeaderLength: UInt64 = 100_000_000

    /// The file's path.
    public let path: String
    /// The free-form string map stored under `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Every tensor's header entry, by name.
    public let entries: [String: Entry]
    private let file: MappedFile
    private let dataStart: Int

    /// The tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Maps and validates the file at `url`.
    /// - Throws: ``FileError`` if it cannot be opened, ``SafeTensorsError`` if it is malformed.
    public convenience init(contentsOf url: URL) throws {
        try self.init(path: url.path)
    }

    /// Maps and validates the file at `path`.
    /// - Throws: ``FileError`` if it cannot be opened, ``SafeTensorsError`` if it is malformed.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        func fail(_ problem: SafeTensorsProblem, _ tensor: String? = nil) -> SafeTensorsError {
            SafeTensorsError(path: path, tensor: tensor, problem: problem)
        }
        guard file.count >= 8, let bytes = file.bytes else { throw fail(.fileTooSmall(size: file.count)) }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= Self.maxHeaderLength else { throw fail(.headerTooLarge(length: headerLength)) }
        guard 8 + headerLength <= UInt64(file.count) else {
            throw fail(.headerBeyondFile(length: headerLength, fileSize: file.count))
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(start: bytes + 8, count: Int(headerLength))
        guard let headerText = String(validating: headerBytes, as: UTF8.self) else { throw fail(.headerNotUTF8) }
        guard headerText.utf8.first == UInt8(ascii: "{") else { throw fail(.headerNotObject) }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(headerText.utf8))
        } catch let error as HeaderProblem {
            throw fail(error.problem, error.tensor)
        } catch {
            throw fail(.invalidJSON(String(describing: error)))
        }
        let entries = header.entries
        // The ranges, in order, must tile the data section exactly.
        let dataSize = file.count - dataStart
        var expectedStart = 0
        let ordered = entries.sorted {
            ($0.value.dataOffsets.lowerBound, $0.value.dataOffsets.upperBound, $0.key)
                < ($1.value.dataOffsets.lowerBound, $1.value.dataOffsets.upperBound, $1.key)
        }
        for (name, entry) in ordered {
            let range = entry.dataOffsets
            guard range.lowerBound == expectedStart else {
                throw fail(.rangeNotContiguous(start: range.lowerBound, expectedStart: expectedStart), name)
            }
            guard range.upperBound <= dataSize else {
                throw fail(.rangeOutOfBounds(end: range.upperBound, dataSize: dataSize), name)
            }
            expectedStart = range.upperBound
        }
        guard expectedStart == dataSize else { throw fail(.dataNotCovered(covered: expectedStart, dataSize: dataSize)) }
        self.metadata = header.metadata
        self.entries = entries
    }

    /// Whether the file holds a tensor named `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The tensor `name` as a zero-copy view into the mapping.
    /// - Throws: ``SafeTensorsError`` with ``SafeTensorsProblem/tensorNotFound``.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name], let bytes = file.bytes else {
            throw SafeTensorsError(path: path, tensor: name, problem: .tensorNotFound)
        }
        return Tensor(shape: entry.shape, dtype: entry.dtype, viewing: bytes + dataStart + entry.dataOffsets.lowerBound, owner: file)
    }
}

/// A header problem found while decoding, with the tensor it concerns.
private struct HeaderProblem: Error {
    let problem: SafeTensorsProblem
    let tensor: String?
}

/// The decoded JSON header: `__metadata__` plus one entry per tensor, each
/// checked as it is decoded (dtype known, sizes non-negative, shape × dtype size
/// equal to the byte range).
private struct Header: Decodable {
    var metadata: [String: String] = [:]
    var entries: [String: SafeTensorsFile.Entry] = [:]

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    enum EntryKey: String, CodingKey {
        case dtype, shape
        case dataOffsets = "data_offsets"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                guard let map = try? container.decode([String: String].self, forKey: key) else {
                    throw HeaderProblem(problem: .invalidMetadata, tensor: nil)
                }
                metadata = map
            } else {
                entries[key.stringValue] = try Self.entry(container, key)
            }
        }
    }

    private static func entry(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> SafeTensorsFile.Entry {
        func fail(_ problem: SafeTensorsProblem) -> HeaderProblem { HeaderProblem(problem: problem, tensor: key.stringValue) }
        guard let fields = try? container.nestedContainer(keyedBy: EntryKey.self, forKey: key) else {
            throw fail(.invalidEntry("entry is not an object"))
        }
        guard let dtypeName = try? fields.decode(String.self, forKey: .dtype) else { throw fail(.invalidEntry("missing dtype")) }
        guard let dtype = DType(rawValue: dtypeName) else { throw fail(.unknownDType(dtypeName)) }
        guard let shape = try? fields.decode([Int].self, forKey: .shape), shape.allSatisfy({ $0 >= 0 }) else {
            throw fail(.invalidEntry("shape is not a list of sizes"))
        }
        guard let offsets = try? fields.decode([Int].self, forKey: .dataOffsets), offsets.count == 2,
              offsets[0] >= 0, offsets[1] >= 0
        else { throw fail(.invalidEntry("data_offsets is not a pair of byte offsets")) }
        let (start, end) = (offsets[0], offsets[1])
        guard start <= end else { throw fail(.invalidRange(start: start, end: end)) }
        var bytes = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail(.shapeOverflow(shape: shape)) }
            bytes = product
        }
        guard bytes == end - start else {
            throw fail(.sizeMismatch(shape: shape, dtype: dtype, expectedBytes: bytes, rangeBytes: end - start))
        }
        return SafeTensorsFile.Entry(dtype: dtype, shape: shape, dataOffsets: start..<end)
    }
}

extension SafeTensorsError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
