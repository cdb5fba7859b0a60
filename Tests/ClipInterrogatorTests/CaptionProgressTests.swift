import Foundation
import NeuralModels
import Synchronization
import ClipInterrogator
import TestSupport
import XCTest

/// Captioning reports progress token by token.
final class CaptionProgressTests: XCTestCase {
    func testEveryGeneratedTokenIsReported() throws {
        let captioner = try BlipCaptioner(directory: Fixtures.url("blip/tiny-base"))
        let image = try ImageDecoder.decode(contentsOf: Fixtures.url("blip/image0.png"))
        let reports = Mutex<[Int]>([])
        let caption = try captioner.caption(image, maxTokens: 32) { done, total in
            XCTAssertEqual(total, 32)
            reports.withLock { $0.append(done) }
        }
        let seen = reports.withLock { $0 }
        XCTAssertFalse(caption.isEmpty)
        XCTAssertEqual(seen, Array(1...seen.count), "one report per decoding step, in order")
        XCTAssertGreaterThan(seen.count, 1)
        XCTAssertLessThanOrEqual(seen.count, 32)
    }
}
