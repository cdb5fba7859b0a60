import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

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

/// ``assertPassesInChildProcess(_:environment:file:line:)`` with OpenBLAS's Haswell
/// kernel forced (`NEURALCORE_BLAS_CORE=Haswell`): the kernel OpenBLAS picks by
/// itself on CPUs with AVX2 but not AVX-512, whose sums for a row depend on the
/// row's place in a product. Skips where it cannot run: not Linux, a CPU without
/// AVX2 and FMA, or a BLAS without that kernel (no `gotoblas_HASWELL` table).
public func assertPassesOnOpenBLASHaswellKernel(_ test: String, file: StaticString = #filePath, line: UInt = #line) throws {
    #if os(Linux)
    let words = Set(((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace))
    let handle = dlopen(nil, RTLD_NOW)
    defer { if let handle { dlclose(handle) } }
    guard words.contains("avx2"), words.contains("fma"), dlsym(handle, "gotoblas_HASWELL") != nil else {
        throw XCTSkip("needs a DYNAMIC_ARCH OpenBLAS on a CPU with AVX2 and FMA")
    }
    try assertPassesInChildProcess(test, environment: ["NEURALCORE_BLAS_CORE": "Haswell"], file: file, line: line)
    #else
    throw XCTSkip("the kernel choice exists for OpenBLAS on Linux")
    #endif
}
