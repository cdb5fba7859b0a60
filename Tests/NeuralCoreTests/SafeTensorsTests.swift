import Foundation
import NeuralCore
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Round trips

    func testRoundTripOfAllFloatStorageTypesAndIntegers() throws {
        let values: [Float] = [0, -0.0, 1, -2.5, 0.1, 1.0 / 3, 65504, 6e-8, Float(bitPattern: 0x0001_1234), .infinity, -.infinity, 3.0e38, 1e-3]
        let f32 = Tensor(shape: [values.count], scalars: values)
        let f16 = f32.converted(to: .f16)
        let bf16 = f32.converted(to: .bf16).reshaped([1, values.count])
        let i64 = [Int64(-1), 1 << 40, 0].withUnsafeBytes { Tensor(shape: [3], dtype: .i64, bytes: $0) }
        let empty = Tensor(zeros: [0, 4])
        let scalar = Tensor(shape: [], scalars: [2.5])
        let url = directory.appendingPathComponent("round.safetensors")
        try SafeTensorsWriter.write(["f32": f32, "f16": f16, "bf16": bf16, "i64": i64, "empty": empty, "scalar": scalar],
                                    metadata: ["format": "pt", "quote\"d": "line\nbreak"], to: url)

        let file = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(file.metadata, ["format": "pt", "quote\"d": "line\nbreak"])
        XCTAssertEqual(file.names, ["bf16", "empty", "f16", "f32", "i64", "scalar"])
        for name in ["f32", "f16", "bf16"] {
            let original = [Tensor](arrayLiteral: f32, f16, bf16)[["f32", "f16", "bf16"].firstIndex(of: name)!]
            let read = try file.tensor(name)
            XCTAssertEqual(read.dtype, original.dtype)
            XCTAssertEqual(read.shape, original.shape)
            XCTAssertTrue(read.isMapped, "tensors are views into the mapping")
            XCTAssertEqual(read.withUnsafeBytes { Array($0) }, original.withUnsafeBytes { Array($0) }, "\(name) bytes")
        }
        XCTAssertEqual(try file.tensor("i64").integers(), [-1, 1 << 40, 0])
        XCTAssertEqual(try file.tensor("empty").shape, [0, 4])
        XCTAssertEqual(try file.tensor("scalar").floats(), [2.5])
        XCTAssertEqual(try file.tensor("f32").floats().map(\.bitPattern), values.map(\.bitPattern))
    }

    func testTensorsOutliveTheirFileObject() throws {
        let url = directory.appendingPathComponent("alive.safetensors")
        try SafeTensorsWriter.write(["x": Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])], to: url)
        var tensor: Tensor?
        do { tensor = try SafeTensorsFile(contentsOf: url).tensor("x") }
        XCTAssertEqual(tensor?.floats(), [1, 2, 3, 4], "the mapping is kept alive by the tensor")
        var copy = try XCTUnwrap(tensor)
        copy.withUnsafeMutableFloats { $0[0] = 9 }
        XCTAssertFalse(copy.isMapped, "mutation copies a file view into owned memory")
        XCTAssertEqual(tensor?.floats(), [1, 2, 3, 4], "value semantics")
        XCTAssertEqual(copy.floats(), [9, 2, 3, 4])
    }

    func testFilesWrittenByPythonReadBackExactly() throws {
        let file = try SafeTensorsFile(contentsOf: Fixtures.url("core/python_written.safetensors"))
        XCTAssertEqual(file.metadata, ["format": "pt", "writer": "make_core_fixtures.py"])
        let f32 = try file.tensor("f32")
        XCTAssertEqual(f32.shape, [3, 5])
        let values = f32.floats()
        XCTAssertTrue(values.contains { $0.isNaN })
        XCTAssertTrue(values.contains(.infinity) && values.contains(-.infinity))
        XCTAssertTrue(values.contains { $0 == 0 && $0.sign == .minus })
        // F16 / BF16 widen exactly to what PyTorch's .float() gives.
        for name in ["f16", "bf16"] {
            let widened = try file.tensor(name).floats()
            let expected = try file.tensor("\(name)_as_f32").floats()
            XCTAssertEqual(widened.map(\.bitPattern), expected.map(\.bitPattern), name)
            // And narrowing them again reproduces the stored bits.
            let narrowed = Tensor(shape: [expected.count], scalars: expected).converted(to: name == "f16" ? .f16 : .bf16)
            XCTAssertEqual(narrowed.withUnsafeBytes { Array($0) }, try file.tensor(name).withUnsafeBytes { Array($0) }, "\(name) narrowing")
        }
        XCTAssertEqual(try file.tensor("i64").integers(), [-1, 1 << 40, 0, Int64.max, Int64.min, 42])
        XCTAssertEqual(try file.tensor("i32").integers(), [Int64(Int32.min), Int64(Int32.max), 0, -7])
        XCTAssertEqual(try file.tensor("u8").integers(), [0, 1, 127, 128, 255])
        let i8 = try file.tensor("i8").integers()
        XCTAssertTrue(i8.contains(-128) && i8.contains(127))
        XCTAssertEqual(try file.tensor("empty_f32").shape, [0, 4])
        XCTAssertEqual(try file.tensor("scalar_f32").shape, [])
        XCTAssertEqual(try file.tensor("scalar_f32").floats(), [2.5])
    }

    func testNarrowingRoundsToNearestEvenLikePyTorch() {
        // 2049 is halfway between the F16 neighbours 2048 and 2050: ties go to even (2048).
        let f16 = Tensor(shape: [3], scalars: [2049, 2051, 70000]).converted(to: .f16).floats()
        XCTAssertEqual(f16, [2048, 2052, .infinity])
        // 257 lies halfway between BF16 neighbours 256 and 258: ties to even (256).
        let bf16 = Tensor(shape: [3], scalars: [257, 259, .nan]).converted(to: .bf16)
        XCTAssertEqual(Array(bf16.floats().prefix(2)), [256, 260])
        XCTAssertEqual(bf16.withUnsafeBytes { $0.load(fromByteOffset: 4, as: UInt16.self) }, 0x7FC0)
    }

    func testEveryHalfBitPatternWidensExactly() {
        let patterns = (0...UInt16.max).map { $0 }
        var widened = [Float](repeating: 0, count: patterns.count)
        convertF16ToF32(&widened, patterns, count: patterns.count)
        for (pattern, value) in zip(patterns, widened) {
            let reference = Float(Float16(bitPattern: pattern))
            if reference.isNaN {
                // The payload is kept: sign, all-ones exponent, mantissa moved up.
                let expected = UInt32(pattern & 0x8000) << 16 | 0x7F80_0000 | UInt32(pattern & 0x03FF) << 13
                XCTAssertEqual(value.bitPattern, expected, "pattern \(String(pattern, radix: 16))")
            } else if value.bitPattern != reference.bitPattern {
                XCTFail("F16 \(String(pattern, radix: 16)): \(value) != \(reference)")
                return
            }
        }
        // The values after the last whole vector go through the scalar steps.
        for offset in 1..<16 {
            var tail = [Float](repeating: 0, count: 31)
            patterns.withUnsafeBufferPointer { convertF16ToF32(&tail, $0.baseAddress! + patterns.count - 31 - offset, count: 31) }
            XCTAssertEqual(tail.map(\.bitPattern), widened[(patterns.count - 31 - offset)...].prefix(31).map(\.bitPattern))
        }
        var bf = [Float](repeating: 0, count: patterns.count)
        convertBF16ToF32(&bf, patterns, count: patterns.count)
        XCTAssertEqual(bf.map(\.bitPattern), patterns.map { UInt32($0) << 16 })
    }

    // MARK: Atomic writes

    func testFailedWriteLeavesNothingBehind() throws {
        let target = directory.appendingPathComponent("existing.safetensors")
        try SafeTensorsWriter.write(["a": Tensor(shape: [1], scalars: [1])], to: target)
        let before = try Data(contentsOf: target)
        struct Interrupted: Error {}
        XCTAssertThrowsError(try writeAtomically(to: target.path) { write in
            try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try write($0) }
            throw Interrupted()
        })
        XCTAssertEqual(try Data(contentsOf: target), before, "the old file is untouched")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["existing.safetensors"], "no temporary file left")

        let missingDirectory = directory.appendingPathComponent("no/such/dir/x.safetensors")
        XCTAssertThrowsError(try SafeTensorsWriter.write(["a": Tensor(shape: [1], scalars: [1])], to: missingDirectory)) { error in
            XCTAssertTrue(error is FileError, "\(error)")
        }
    }

    // MARK: Malformed files

    /// Writes `header` (with `declaredLength` in place of its real length when
    /// given) followed by `data`, and returns the error opening it gives.
    func openError(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil, rawHeader: [UInt8]? = nil,
                   file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
        let headerBytes = rawHeader ?? Array(header.utf8)
        var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { Array($0) }
        bytes += headerBytes + data
        return openError(bytes: bytes, file: file, line: line)
    }

    func openError(bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
        let url = directory.appendingPathComponent("bad-\(UUID().uuidString).safetensors")
        XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: Data(bytes)))
        do {
            _ = try SafeTensorsFile(contentsOf: url)
            XCTFail("a malformed file was accepted", file: file, line: line)
            return nil
        } catch let error as SafeTensorsError {
            XCTAssertEqual(error.path, url.path, "the error names the file", file: file, line: line)
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    func entry(_ name: String, _ dtype: String = "F32", shape: [Int], _ start: Int, _ end: Int) -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(start),\(end)]}"
    }

    func testMalformedFilesGiveTypedErrors() {
        let valid = "{\(entry("x", shape: [2], 0, 8))}"
        let eight = [UInt8](repeating: 0, count: 8)
        let cases: [(String, SafeTensorsError?, SafeTensorsProblem, String?)] = [
            ("empty file", openError(bytes: []), .fileTooSmall(size: 0), nil),
            ("shorter than the length field", openError(bytes: [1, 2, 3, 4, 5]), .fileTooSmall(size: 5), nil),
            ("huge header length", openError(header: valid, data: eight, declaredLength: UInt64.max), .headerTooLarge(length: UInt64.max), nil),
            ("header length over the 100 MB cap", openError(header: valid, data: eight, declaredLength: 100_000_001), .headerTooLarge(length: 100_000_001), nil),
            ("header length beyond the file", openError(header: valid, declaredLength: 4096), .headerBeyondFile(length: 4096, fileSize: 8 + valid.utf8.count), nil),
            ("truncated header", openError(header: String(valid.prefix(10)), declaredLength: UInt64(valid.utf8.count)), .headerBeyondFile(length: UInt64(valid.utf8.count), fileSize: 18), nil),
            ("zero-length header", openError(header: ""), .headerNotObject, nil),
            ("invalid UTF-8", openError(header: "", rawHeader: [0x7B, 0xFF, 0xFE, 0x7D]), .headerNotUTF8, nil),
            ("header is a JSON array", openError(header: "[]"), .headerNotObject, nil),
            ("entry is not an object", openError(header: "{\"x\":3}"), .invalidEntry("entry is not an object"), "x"),
            ("missing dtype", openError(header: "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]), .invalidEntry("missing dtype"), "x"),
            ("unknown dtype", openError(header: "{\(entry("x", "F12", shape: [2], 0, 8))}", data: eight), .unknownDType("F12"), "x"),
            ("negative dimension", openError(header: "{\(entry("x", shape: [-2], 0, 8))}", data: eight), .invalidEntry("shape is not a list of sizes"), "x"),
            ("start after end", openError(header: "{\(entry("x", shape: [0], 8, 4))}", data: eight), .invalidRange(start: 8, end: 4), "x"),
            ("shape/size mismatch", openError(header: "{\(entry("x", shape: [3], 0, 8))}", data: eight), .sizeMismatch(shape: [3], dtype: .f32, expectedBytes: 12, rangeBytes: 8), "x"),
            ("shape overflow", openError(header: "{\(entry("x", shape: [1 << 40, 1 << 40], 0, 8))}", data: eight), .shapeOverflow(shape: [1 << 40, 1 << 40]), "x"),
            ("offsets past the data", openError(header: "{\(entry("x", shape: [4], 0, 16))}", data: eight), .rangeOutOfBounds(end: 16, dataSize: 8), "x"),
            ("truncated data section", openError(header: "{\(entry("a", shape: [2], 0, 8)),\(entry("b", shape: [2], 8, 16))}", data: [UInt8](repeating: 0, count: 12)), .rangeOutOfBounds(end: 16, dataSize: 12), "b"),
            ("overlapping ranges", openError(header: "{\(entry("a", shape: [2], 0, 8)),\(entry("b", shape: [2], 4, 12))}", data: eight + [0, 0, 0, 0]), .rangeNotContiguous(start: 4, expectedStart: 8), "b"),
            ("gap between ranges", openError(header: "{\(entry("a", shape: [1], 0, 4)),\(entry("b", shape: [1], 8, 12))}", data: eight + [0, 0, 0, 0]), .rangeNotContiguous(start: 8, expectedStart: 4), "b"),
            ("first range not at 0", openError(header: "{\(entry("a", shape: [1], 4, 8))}", data: eight), .rangeNotContiguous(start: 4, expectedStart: 0), "a"),
            ("trailing bytes not covered", openError(header: valid, data: eight + [1, 2, 3, 4]), .dataNotCovered(covered: 8, dataSize: 12), nil),
            ("metadata not strings", openError(header: "{\"__metadata__\":{\"a\":1},\(entry("x", shape: [2], 0, 8))}", data: eight), .invalidMetadata, nil),
            ("three data offsets", openError(header: "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", data: eight), .invalidEntry("data_offsets is not a pair of byte offsets"), "x"),
            ("fractional offsets", openError(header: "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,7.5]}}", data: eight), .invalidEntry("data_offsets is not a pair of byte offsets"), "x"),
        ]
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        for (label, error, problem, tensor) in cases {
            XCTAssertEqual(error?.problem, problem, label)
            XCTAssertEqual(error?.tensor, tensor, "\(label): tensor named")
        }
        // Invalid JSON: the parser's message varies by platform, the case does not.
        if case .invalidJSON? = openError(header: "{\"x\": {\"dtype\": ")?.problem {} else { XCTFail("bad JSON") }
        if case .invalidJSON? = openError(header: "{not json}")?.problem {} else { XCTFail("bad JSON") }
    }

    func testMissingFileAndMissingTensor() throws {
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: directory.appendingPathComponent("absent.safetensors"))) { error in
            XCTAssertEqual((error as? FileError)?.operation, "open")
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: directory.path)) { XCTAssertTrue($0 is FileError, "a directory is not a file") }
        let url = directory.appendingPathComponent("one.safetensors")
        try SafeTensorsWriter.write(["x": Tensor(shape: [1], scalars: [1])], to: url)
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: url).tensor("y")) { error in
            XCTAssertEqual(error as? SafeTensorsError, SafeTensorsError(path: url.path, tensor: "y", problem: .tensorNotFound))
        }
    }
}
