// This file imports nothing of the package but ClipInterrogator: it compiles only
// while the common path (models by name, images, interrogation) needs no second
// import of this package's modules.
import ClipInterrogator
import Foundation
import XCTest

final class SingleImportTests: XCTestCase {
    func testTheCommonPathNeedsOnlyOneImport() async throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
        let environment = try HubEnvironment(variables: ["HOME": NSTemporaryDirectory(), "HF_HUB_OFFLINE": "1"])
        let resolver = ModelResolver(environment: environment, aliases: .clipInterrogator)
        let clip = try resolver.resolve(try DemoModel.clipDirectory.path, files: .clip)
        let blip = try resolver.resolve(try DemoModel.captionDirectory.path, files: .blip)
        let interrogator = try Interrogator.load(clipDirectory: clip.directory, captionDirectory: blip.directory,
                                                 configuration: try DemoModel.configuration(),
                                                 captionOptions: GenerationOptions())
        let image: RGBImage = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent("demo/heldout/00.png"))
        let result = try await interrogator.interrogate(image, mode: .fast)
        XCTAssertTrue(result.prompt?.hasPrefix(result.caption! + ", ") == true, "\(result)")
        do {
            _ = try ImageDecoder.decode(contentsOf: fixtures.appendingPathComponent("missing.png"))
            XCTFail("a missing image is an error")
        } catch let error as ImageDecodingError {
            XCTAssertTrue(error.localizedDescription.contains("missing.png"))
        }
    }
}
