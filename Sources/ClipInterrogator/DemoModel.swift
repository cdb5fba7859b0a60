import Foundation
import HuggingFaceHub

/// The demo model pair shipped in the repository's `Weights/demo`: a small CLIP
/// and BLIP trained by `Weights/demo/train_demo.py` on a toy world of coloured
/// shapes, with label tables for that world. It needs no network, so the quick
/// start and the end-to-end tests run anywhere; it knows nothing outside its world
/// (see `Weights/demo/README.md`). An installation carries it in
/// `share/clip-interrogator-swift/demo` (``InstalledData``).
public enum DemoModel {
    /// The folder of the demo files: an installation's
    /// `share/clip-interrogator-swift/demo`, else the checkout's `Weights/demo`
    /// (see ``InstalledData/demoDirectory()``).
    /// - Throws: ``InstalledData/NotFound`` naming every folder searched.
    public static var directory: URL { get throws { try InstalledData.demoDirectory() } }
    /// The CLIP checkpoint (Hugging Face layout).
    public static var clipDirectory: URL { get throws { try directory.appendingPathComponent("clip") } }
    /// The BLIP caption checkpoint (Hugging Face layout).
    public static var captionDirectory: URL { get throws { try directory.appendingPathComponent("blip") } }
    /// The demo label set (colours, shapes, styles, backgrounds, layouts).
    public static var labelDirectory: URL { get throws { try directory.appendingPathComponent("labels") } }
    /// The stem of the name the demo's label caches are filed under: ``configuration()``
    /// appends a fingerprint of the CLIP checkpoint (`demo-3f9a0c2b71d4`), so a
    /// retrained demo never reuses the embeddings of the one before.
    public static let encoderName = "demo"

    /// A configuration for the demo: its model name (``encoderName`` and the
    /// checkpoint's fingerprint) and label set, the reference's defaults otherwise.
    public static func configuration() throws -> InterrogatorConfiguration {
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
}
