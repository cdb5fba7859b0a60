import Foundation
import NeuralCore
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
    /// CPU time per run of the whole process (all threads), median: what the work
    /// cost, less sensitive to other load on the machine than wall-clock time.
    var cpuMedianSeconds: Double?
    /// CPU time per run of the measuring thread alone, median (the single-threaded
    /// kernel figures use this).
    var threadCPUMedianSeconds: Double?
    /// GFLOP/s by the measuring thread's CPU time (meaningful with one thread).
    var threadCPUGflops: Double?
    /// Whole-model efficiency: this stage's GFLOP/s over the sgemm probe's at the
    /// model's own linear-layer shapes, same process (stage 2), by wall-clock time.
    var efficiency: Double?
    /// ``efficiency`` by process CPU time (what a loaded machine can still tell).
    var cpuEfficiency: Double?
    /// The threads the library computed with.
    var threads: Int? = Threading.threadCount
    /// The BLAS kernel in force (``BLAS/core``).
    var blasCore: String? = BLAS.core

    /// The spread as ±% of the median (half the min–max range).
    var spreadPercent: Double { medianSeconds > 0 ? (maxSeconds - minSeconds) / 2 / medianSeconds * 100 : 0 }
}

/// Times `body` `runs` times (at least once), after one warm-up run unless
/// `warmUp` is false. `flops` (per call) gives GFLOP/s, `items` (per call) a rate.
/// With `repeats`, each timed run calls `body` that many times and the times are
/// per call (for products too short to time one by one). `profiled: false` keeps
/// the runs out of a `--perf` profile (reference probes).
func measure(stage: String, _ name: String, runs: Int, warmUp: Bool = true, repeats: Int = 1, flops: Double? = nil,
             items: Double? = nil, profiled: Bool = true, _ body: () throws -> Void) rethrows -> Measurement {
    let runs = max(1, runs), repeats = max(1, repeats)
    if warmUp { try body() }
    var times: [Double] = [], cpu: [Double] = [], threadCPU: [Double] = []
    for _ in 0..<runs {
        if profiled { PerfControl.shared?.enable() }
        let (cpu0, thread0) = (cpuSeconds(CLOCK_PROCESS_CPUTIME_ID), cpuSeconds(CLOCK_THREAD_CPUTIME_ID))
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<repeats { try body() }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(repeats))
        if profiled { PerfControl.shared?.disable() }
        threadCPU.append((cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - thread0) / Double(repeats))
        cpu.append((cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / Double(repeats))
    }
    times.sort()
    let median = medianOf(times), threadMedian = medianOf(threadCPU)
    return Measurement(stage: stage, name: name, runs: runs, medianSeconds: median, minSeconds: times.first!,
                       maxSeconds: times.last!, gflops: flops.map { $0 / median / 1e9 },
                       itemsPerSecond: items.map { $0 / median }, peakResidentMB: peakResidentMegabytes(),
                       cpuMedianSeconds: medianOf(cpu), threadCPUMedianSeconds: threadMedian,
                       threadCPUGflops: flops.map { $0 / threadMedian / 1e9 })
}

/// The median of `values` (the mean of the middle two for an even count).
func medianOf(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// CPU seconds consumed so far by the process or the calling thread (`clock`).
func cpuSeconds(_ clock: clockid_t) -> Double {
    var time = timespec()
    clock_gettime(clock, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
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
    let header = ["stage", "name", "median", "spread", "GFLOP/s", "CPU", "thread CPU", "GFLOP/s (thread CPU)", "efficiency",
                  "efficiency (CPU)", "items/s", "peak RSS"]
    var rows = [header]
    for r in results {
        rows.append([
            r.stage, r.name, String(format: "%.3f ms", r.medianSeconds * 1000), String(format: "±%.1f%%", r.spreadPercent),
            r.gflops.map { String(format: "%.1f", $0) } ?? "",
            r.cpuMedianSeconds.map { String(format: "%.3f ms", $0 * 1000) } ?? "",
            r.threadCPUMedianSeconds.map { String(format: "%.3f ms", $0 * 1000) } ?? "",
            r.threadCPUGflops.map { String(format: "%.1f", $0) } ?? "",
            r.efficiency.map { String(format: "%.0f%%", $0 * 100) } ?? "",
            r.cpuEfficiency.map { String(format: "%.0f%%", $0 * 100) } ?? "",
            r.itemsPerSecond.map { String(format: "%.0f", $0) } ?? "",
            String(format: "%.0f MB", r.peakResidentMB),
        ])
    }
    let widths = header.indices.map { column in rows.map { $0[column].count }.max()! }
    for (index, row) in rows.enumerated() {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        if index == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}

/// `perf record --control fifo:CTL,ACK -D -1` from outside: when the environment
/// names the two FIFOs (`INTERROGATE_BENCH_PERF_CTL`, `INTERROGATE_BENCH_PERF_ACK`),
/// sampling is enabled only around the timed runs, so a profile shows the measured
/// work without model construction or warm-up (Benchmarks/run_side_by_side.py
/// `--perf`).
final class PerfControl: @unchecked Sendable {
    static let shared: PerfControl? = {
        let environment = ProcessInfo.processInfo.environment
        guard let control = environment["INTERROGATE_BENCH_PERF_CTL"], let ack = environment["INTERROGATE_BENCH_PERF_ACK"],
              let controlHandle = FileHandle(forWritingAtPath: control), let ackHandle = FileHandle(forReadingAtPath: ack)
        else { return nil }
        return PerfControl(control: controlHandle, ack: ackHandle)
    }()

    private let control: FileHandle, ack: FileHandle

    private init(control: FileHandle, ack: FileHandle) {
        self.control = control
        self.ack = ack
    }

    func enable() { send("enable") }
    func disable() { send("disable") }

    /// Writes a command and waits for perf's "ack".
    private func send(_ command: String) {
        control.write(Data("\(command)\n".utf8))
        var reply = Data()
        while !reply.contains(UInt8(ascii: "\n")), let byte = try? ack.read(upToCount: 1), !byte.isEmpty { reply += byte }
    }
}
