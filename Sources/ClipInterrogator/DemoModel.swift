import Foundation
import HuggingFaceHub

/// The demo model pair shipped in the repository's `Weights/demo`: a small CLIP
/// and BLIP trained by `Weights/demo/train_demo.py` on a toy world of coloured
/// shapes, with label tables for that world. It needs no network, so the quick
/// start and the end-to-end tests run anywhere; it knows nothing outside its world
/// (see `Weights/demo/README.md`).
public enum DemoModel {
    /// The demo files are not where the package was built from.
    public struct NotFound: Error, CustomStringConvertible, Sendable {
        /// The folder that was expected.
        public let path: String
        /// What is missing and how to get it.
        public var description: String {
            "\(path): the demo model is not there (it ships in the repository's Weights/demo; "
                + "build from a clone, or run Weights/demo/train_demo.py)"
        }
    }

    /// `Weights/demo` in the checkout this package was built from.
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Weights/demo")
    /// The CLIP checkpoint (Hugging Face layout).
    public static var clipDirectory: URL { directory.appendingPathComponent("clip") }
    /// The BLIP caption checkpoint (Hugging Face layout).
    public static var captionDirectory: URL { directory.appendingPathComponent("blip") }
    /// The demo label set (colours, shapes, styles, backgrounds, layouts).
    public static var labelDirectory: URL { directory.appendingPathComponent("labels") }
    /// The stem of the name the demo's label caches are filed under: ``configuration()``
    /// appends a fingerprint of the CLIP checkpoint (`demo-3f9a0c2b71d4`), so a
    /// retrained demo never reuses the embeddings of the one before.
    public static let encoderName = "demo"

    /// A configuration for the demo: its model name (``encoderName`` and the
    /// checkpoint's fingerprint) and label set, the reference's defaults otherwise.
    public static func configuration() throws -> InterrogatorConfiguration {
        try requirePresent()
        var configuration = InterrogatorConfiguration(encoderName: "\(encoderName)-\(try ResolvedModel.fingerprint(of: clipDirectory))")
        configuration.labelSet = try LabelSet(directory: labelDirectory)
        return configuration
    }

    /// An interrogator over the demo models and labels, with `configuration`
    /// (default: ``configuration()``).
    public static func interrogator(configuration: InterrogatorConfiguration? = nil) throws -> Interrogator {
        try Interrogator.load(clipDirectory: clipDirectory, captionDirectory: captionDirectory,
                              configuration: try configuration ?? Self.configuration())
    }

    /// Throws ``NotFound`` unless the demo files are present.
    public static func requirePresent() throws {
        for file in [clipDirectory, captionDirectory].map({ $0.appendingPathComponent("model.safetensors") })
        where !FileManager.default.fileExists(atPath: file.path) {
            throw NotFound(path: directory.path)
        }
    }
}
