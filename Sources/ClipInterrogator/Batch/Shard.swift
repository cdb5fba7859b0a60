import Foundation

/// Which part of a dataset one process works on, when a batch is split over
/// many processes by an existing engine (Kubernetes Indexed Jobs, Slurm job
/// arrays, GNU parallel) rather than a coordinator of this project's.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    /// 0-based, below ``count``.
    public let index: Int
    /// The number of shards, at least 1.
    public let count: Int

    /// Shard `index` (0-based) of `count`.
    /// - Throws: ``ShardError/invalid(_:)`` unless `0 ≤ index < count`.
    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else { throw ShardError.invalid("shard \(index) of \(count)") }
        self.index = index
        self.count = count
    }

    /// `I/N` with `1 ≤ I ≤ N` (1-based, as typed on a command line).
    /// - Throws: ``ShardError/invalid(_:)`` for anything else (`0/4`, `-1/4`, `1/x/4`).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(i) else {
            throw ShardError.invalid("'\(text)' is not I/N with 1 ≤ I ≤ N (e.g. 2/4)")
        }
        try self.init(index: i - 1, count: n)
    }

    /// The shard an engine assigned to this process, from its environment:
    /// a Slurm job array (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`), or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX` of `count`, the job's `completions`, which
    /// Kubernetes does not put in the environment).
    /// - Throws: ``ShardError`` when neither is present, a value is malformed, or
    ///   `count` disagrees with Slurm's.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       count: Int? = nil) throws -> Shard {
        func integer(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text) else { throw ShardError.invalid("\(name)=\(text) is not a whole number") }
            return value
        }
        if let task = try integer("SLURM_ARRAY_TASK_ID") {
            guard let total = try integer("SLURM_ARRAY_TASK_COUNT") else {
                throw ShardError.invalid("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT")
            }
            if let count, count != total {
                throw ShardError.invalid("--shard-count \(count) disagrees with SLURM_ARRAY_TASK_COUNT=\(total)")
            }
            let minimum = try integer("SLURM_ARRAY_TASK_MIN") ?? 0
            do { return try Shard(index: task - minimum, count: total) } catch {
                throw ShardError.invalid("SLURM_ARRAY_TASK_ID=\(task) with SLURM_ARRAY_TASK_MIN=\(minimum) is outside the "
                                         + "\(total) tasks (the array must be contiguous, e.g. --array=0-\(total - 1))")
            }
        }
        if let index = try integer("JOB_COMPLETION_INDEX") {
            guard let count else { throw ShardError.invalid("JOB_COMPLETION_INDEX is set: give the job's completions as --shard-count N") }
            do { return try Shard(index: index, count: count) } catch {
                throw ShardError.invalid("JOB_COMPLETION_INDEX=\(index) is outside --shard-count \(count)")
            }
        }
        throw ShardError.noEngine
    }

    /// `NAME-00003-of-00016.EXT` for `NAME.EXT`: the shard's own output file
    /// (0-based index, as Kubernetes numbers completions and TFRecord names shards).
    public func outputURL(for url: URL) -> URL {
        let fileExtension = url.pathExtension
        let base = url.deletingPathExtension().lastPathComponent
        let name = String(format: "%@-%05d-of-%05d", base, index, count) + (fileExtension.isEmpty ? "" : "." + fileExtension)
        return url.deletingLastPathComponent().appendingPathComponent(name)
    }

    /// Whether the item called `name` falls in this shard: its name (a folder
    /// image's path relative to the folder, a listed file's path as given, a
    /// WebDataset sample's key) hashes (FNV-1a, 64-bit) to it. Deterministic on
    /// every machine and stable when other items come and go; every item falls in
    /// exactly one shard.
    public func contains(_ name: String) -> Bool {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return Int(hash % UInt64(count)) == index
    }

    /// The items of `items` that fall in this shard (``contains(_:)``), in order.
    public func select(_ items: [BatchItem]) -> [BatchItem] {
        items.filter { contains($0.name) }
    }

    /// `"3/16"` (1-based, as typed).
    public var description: String { "\(index + 1)/\(count)" }
}

/// A shard that cannot be determined.
public enum ShardError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// A malformed or inconsistent shard; the text says which value.
    case invalid(String)
    /// `--shard auto` outside a Slurm array or a Kubernetes Indexed Job.
    case noEngine

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .invalid(reason): "invalid shard: \(reason)"
        case .noEngine: "--shard auto needs a Slurm job array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job "
            + "(JOB_COMPLETION_INDEX with --shard-count); give --shard I/N otherwise"
        }
    }

    /// The same as ``description``.
    public var errorDescription: String? { description }
}
