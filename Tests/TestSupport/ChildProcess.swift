import Foundation
import XCTest

/// Runs one XCTest method of this test binary in a child process, for what must
/// happen before a process's first matrix product (choosing OpenBLAS's kernel):
/// `test` is `Module.Class/method`; `NEURALCORE_TEST_CHILD` is set to the method's
/// name, `OPENBLAS_CORETYPE` and `NEURALCORE_BLAS_CORE` are cleared, then
/// `environment` is added. Fails with the child's output unless the child ran
/// exactly that one test and it passed.
public func assertPassesInChildProcess(_ test: String, environment: [String: String],
                                       file: StaticString = #filePath, line: UInt = #line) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = [test]
    var childEnvironment = ProcessInfo.processInfo.environment
    childEnvironment["OPENBLAS_CORETYPE"] = nil
    childEnvironment["NEURALCORE_BLAS_CORE"] = nil
    childEnvironment["NEURALCORE_TEST_CHILD"] = String(test.split(separator: "/").last ?? "")
    for (key, value) in environment { childEnvironment[key] = value }
    process.environment = childEnvironment
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "child \(test) failed:\n\(output)", file: file, line: line)
    XCTAssert(output.contains("Executed 1 test, with 0 failures"), "child \(test) did not run its test:\n\(output)",
              file: file, line: line)
}
