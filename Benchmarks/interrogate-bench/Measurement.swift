import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One benchmark stage's timings.
struct Measurement: Codable {
    var stage: String
    var name: String
    var runs: Int
    var medianSeconds: Double
    var minSeconds: Double
    var maxSeconds: Double
    var gflops: Double?
    var itemsPerSecond: Double?
    var peakResidentMB: Double

    /// The spread as ±% of the median (half the min–max range).
    var spreadPercent: Double { medianSeconds > 0 ? (maxSeconds - minSeconds) / 2 / medianSeconds * 100 : 0 }
}

/// Times `body` `runs` times (at least once), after one warm-up run unless
/// `warmUp` is false. `flops` (per run) gives GFLOP/s, `items` (per run) a rate.
func measure(stage: String, _ name: String, runs: Int, warmUp: Bool = true, flops: Double? = nil, items: Double? = nil,
             _ body: () throws -> Void) rethrows -> Measurement {
    let runs = max(1, runs)
    if warmUp { try body() }
    var times: [Double] = []
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    times.sort()
    let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
    return Measurement(stage: stage, name: name, runs: runs, medianSeconds: median, minSeconds: times.first!,
                       maxSeconds: times.last!, gflops: flops.map { $0 / median / 1e9 },
                       itemsPerSecond: items.map { $0 / median }, peakResidentMB: peakResidentMegabytes())
}

/// The process's peak resident set size so far, in MB.
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    #if canImport(Darwin)
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576
    #else
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
    #endif
}

/// Prints measurements as an aligned table.
func printTable(_ results: [Measurement]) {
    let header = ["stage", "name", "median", "spread", "GFLOP/s", "items/s", "peak RSS"]
    var rows = [header]
    for r in results {
        rows.append([
            r.stage, r.name, String(format: "%.3f ms", r.medianSeconds * 1000), String(format: "±%.1f%%", r.spreadPercent),
            r.gflops.map { String(format: "%.1f", $0) } ?? "", r.itemsPerSecond.map { String(format: "%.0f", $0) } ?? "",
            String(format: "%.0f MB", r.peakResidentMB),
        ])
    }
    let widths = header.indices.map { column in rows.map { $0[column].count }.max()! }
    for (index, row) in rows.enumerated() {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        if index == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}
