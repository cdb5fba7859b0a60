import Foundation

/// Where the package's data files are found at run time: the reference's label
/// lists and the demo model pair, wherever the program was built or installed.
///
/// A program is found with its data in one of these layouts (first match wins):
///
/// - **the build folder**: SwiftPM's resource folder
///   (`swift-clip-interrogator_ClipInterrogator.resources`) beside the
///   executable, as `swift build` leaves it (a copy of the executable keeps
///   working when that folder is copied beside it);
/// - **an installation**: `PREFIX/bin/PROGRAM` with its data in
///   `PREFIX/share/clip-interrogator-swift/` (`labels/`, `demo/`), as
///   `Sources/interrogate/install.sh --prefix PREFIX` lays it out (symbolic links
///   to the executable are followed);
/// - for the demo only, the checkout the package was built from
///   (`Weights/demo`), while it exists, so `swift run` and the tests find it.
///
/// `Bundle.module` is not used: on Linux it stops the program with a fatal
/// error when the build folder is gone; here a missing file is a ``NotFound``
/// error that lists every place searched.
public enum InstalledData {
    /// The folder under `PREFIX/share` that an installation's data lives in.
    public static let shareFolder = "clip-interrogator-swift"
    /// The name of SwiftPM's resource folder for this module (package name,
    /// underscore, target name).
    static let resourceBundleName = "swift-clip-interrogator_ClipInterrogator"

    /// Data that is in none of the places it is looked for.
    public struct NotFound: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
        /// What was looked for ("the reference's label lists", "the demo model").
        public let item: String
        /// Every folder searched, in order.
        public let searched: [String]

        /// What is missing, where it was looked for and how to install it.
        public var description: String {
            "\(item) not found; looked in " + searched.joined(separator: ", ")
                + ". Install the program with its data (bash Sources/interrogate/install.sh --prefix DIR, see the README's "
                + "\"Install\"), or keep the build folder's \(resourceBundleName).resources beside the executable"
        }

        /// The same text as ``description``.
        public var errorDescription: String? { description }
    }

    /// The folder of the running executable, symbolic links resolved; nil when
    /// the process cannot tell.
    static var executableDirectory: URL? {
        (Bundle.main.executableURL ?? CommandLine.arguments.first.map { URL(fileURLWithPath: $0) })?
            .resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// `PREFIX/share/clip-interrogator-swift` for an executable in `PREFIX/bin`.
    static var sharedDirectory: URL? {
        executableDirectory?.deletingLastPathComponent().appendingPathComponent("share/\(shareFolder)")
    }

    /// The folder holding the reference's label lists (`flavors.txt`, …, with
    /// their LICENSE): the build folder's resources, else an installation's
    /// `share/clip-interrogator-swift/labels`.
    /// - Throws: ``NotFound`` naming every folder searched.
    public static func labelListDirectory() throws -> URL {
        var candidates: [URL] = []
        for base in [executableDirectory, Bundle.main.bundleURL, Bundle.main.resourceURL].compactMap({ $0 }) {
            candidates.append(base.appendingPathComponent("\(resourceBundleName).resources/data"))
            candidates.append(base.appendingPathComponent("\(resourceBundleName).bundle/data"))
            candidates.append(base.appendingPathComponent("\(resourceBundleName).bundle/Contents/Resources/data"))
        }
        if let shared = sharedDirectory { candidates.append(shared.appendingPathComponent("labels")) }
        return try first(of: candidates, containing: "flavors.txt", item: "the reference's label lists")
    }

    /// The folder of the demo model pair (`clip/`, `blip/`, `labels/`): an
    /// installation's `share/clip-interrogator-swift/demo`, else the checkout's
    /// `Weights/demo`.
    /// - Throws: ``NotFound`` naming every folder searched.
    public static func demoDirectory() throws -> URL {
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Weights/demo")
        let candidates = [sharedDirectory?.appendingPathComponent("demo"), checkout].compactMap { $0 }
        return try first(of: candidates, containing: "clip/model.safetensors", item: "the demo model")
    }

    /// The first of `candidates` that holds `file`.
    static func first(of candidates: [URL], containing file: String, item: String) throws -> URL {
        var seen: [String] = []
        for candidate in candidates where !seen.contains(candidate.standardizedFileURL.path) {
            seen.append(candidate.standardizedFileURL.path)
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(file).path) { return candidate }
        }
        throw NotFound(item: item, searched: seen)
    }
}
