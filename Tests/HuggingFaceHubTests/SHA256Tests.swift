import HuggingFaceHub
import XCTest

final class SHA256Tests: XCTestCase {
    func testSHA256KnownAnswers() {
        XCTAssertEqual(SHA256.hexDigest([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest([UInt8](repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Incremental updates across block boundaries give the same digest.
        var hasher = SHA256()
        let message = Array("The quick brown fox jumps over the lazy dog".utf8)
        for chunk in stride(from: 0, to: message.count, by: 7) { hasher.update(message[chunk..<min(chunk + 7, message.count)]) }
        XCTAssertEqual(hasher.finalize().map { String(format: "%02x", $0) }.joined(),
                       "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592")
    }
}
