import ClipInterrogator
import Foundation
import NeuralCore

/// The bundled benchmark: `swift run -c release interrogate-bench [--json FILE] [--threads N] [--runs N]`.
///
/// Stages 1–5 run here (the sgemm probe, CLIP embeddings, label tokenising, the
/// chain step, BLIP); stage 6 is `--full-interrogation`, stage 7 `--throughput`.
/// Docs/performance.md says what each measures. Every mode prints the thread
/// count and the BLAS line first, so that a report says which kernel ran.
@main
struct InterrogateBench {
    /// "threads: N; BLAS: …" and, where the library has advice, a note.
    static func printSetting() {
        print("threads: \(Threading.threadCount); BLAS: \(BLAS.description)")
        if let advice = BLAS.advice { print("note: \(advice)") }
    }

    /// Runs ``run()``; an error ends the process with its message and exit status 1
    /// (not a crash report).
    static func main() {
        do {
            try run()
        } catch {
            fail("\(error)", status: 1)
        }
    }

    /// Ends the process with `message` on standard error and exit status `status`
    /// (1: the work failed; 2: the command line is wrong).
    static func fail(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("interrogate-bench: \(message)\n".utf8))
        exit(status)
    }

    /// The value of `option`, a whole number ≥ 1; anything else ends the process
    /// with a message and exit status 2.
    static func positiveNumber(after option: String, _ value: String?) -> Int {
        guard let value, let number = Int(value), number >= 1 else {
            fail("\(option) needs a whole number ≥ 1, not \(value.map { "'\($0)'" } ?? "nothing")", status: 2)
        }
        return number
    }

    /// The modes named in `value` (comma-separated raw values, e.g. "best,turbo");
    /// an unknown or missing name ends the process with a message and exit status 2.
    static func modes(after option: String, _ value: String?) -> [InterrogationMode] {
        let names = (value ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return names.map { name in
            guard let mode = InterrogationMode(rawValue: name) else {
                let known = InterrogationMode.allCases.map(\.rawValue).joined(separator: ", ")
                fail("\(option): no mode '\(name)' (modes: \(known))", status: 2)
            }
            return mode
        }
    }

    /// `POOL[:BATCH[:MARGIN]]`, comma-separated (``TurboSettings``' pool size, batch
    /// size and margin); anything else ends the process with a message and exit status 2.
    static func turboSettings(_ value: String) -> [TurboSettings] {
        value.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard (1...3).contains(parts.count), let pool = Int(parts[0]), pool >= 1,
                  let batch = parts.count > 1 ? Int(parts[1]) : 32, batch >= 1,
                  let margin = parts.count > 2 ? Float(parts[2]) : 0, margin >= 0 else {
                fail("--turbo-quality needs POOL[:BATCH[:MARGIN]] (whole numbers ≥ 1, margin ≥ 0), not '\(item)'", status: 2)
            }
            return TurboSettings(poolSize: pool, batchSize: batch, margin: margin)
        }
    }

    /// Parses the arguments and runs what they ask for.
    static func run() throws {
        var arguments = CommandLine.arguments.dropFirst()
        var jsonPath: String?
        var runs = 10
        var stageFilter: String?
        var turboQuality: [TurboSettings]?
        while let argument = arguments.popFirst() {
            switch argument {
            case "--json": jsonPath = arguments.popFirst()
            case "--threads": Threading.setThreadCount(positiveNumber(after: argument, arguments.popFirst()))
            case "--runs": runs = positiveNumber(after: argument, arguments.popFirst())
            case "--stage":
                stageFilter = arguments.popFirst()
            case "--write-checkpoints":
                try FullInterrogation.writeCheckpoints(to: URL(fileURLWithPath: arguments.popFirst() ?? "bench-checkpoints"))
                return
            case "--full-interrogation":
                let directory = URL(fileURLWithPath: arguments.popFirst() ?? "bench-checkpoints")
                var modes: [InterrogationMode] = []
                if arguments.first == "--modes" {
                    arguments.removeFirst()
                    modes = Self.modes(after: "--modes", arguments.popFirst())
                }
                printSetting()
                let report = try FullInterrogation.run(directory: directory, modes: modes)
                print(String(decoding: try prettyJSON(report), as: UTF8.self))
                return
            case "--throughput":
                // --throughput DIR [--batch-size N] [--images N] [--modes caption,fast,classic]
                let directory = URL(fileURLWithPath: arguments.popFirst() ?? "bench-checkpoints")
                var (batchSize, images, modes) = (8, 16, [InterrogationMode.caption, .fast, .classic])
                while let option = arguments.first, option.hasPrefix("--") {
                    arguments.removeFirst()
                    let value = arguments.popFirst() ?? ""
                    switch option {
                    case "--batch-size": batchSize = positiveNumber(after: option, value)
                    case "--images": images = positiveNumber(after: option, value)
                    case "--modes": modes = Self.modes(after: option, value)
                    default: fail("unknown --throughput option \(option)", status: 2)
                    }
                }
                printSetting()
                let rows = try Throughput.run(directory: directory, modes: modes, batchSize: batchSize, images: images)
                print(String(decoding: try prettyJSON(rows), as: UTF8.self))
                return
            case "--turbo-quality":
                // Run after the loop, so that a --json after it is read too.
                turboQuality = turboSettings(arguments.popFirst() ?? "128,256,512")
            case "--clip-parity":
                let directory = URL(fileURLWithPath: arguments.popFirst() ?? ".")
                exit(try ClipParity.run(directory: directory) ? 0 : 1)
            case "--help", "-h":
                print("""
                    usage: interrogate-bench [--json FILE] [--threads N] [--runs N] [--stage N]
                           interrogate-bench --write-checkpoints DIR    (stage 6 inputs, ~3.7 GB)
                           interrogate-bench --full-interrogation DIR [--modes best,turbo]
                                               (stage 6: load time, peak memory, fast mode; then whole
                                                interrogations in other modes with a 16-step chain)
                           interrogate-bench --throughput DIR [--batch-size N] [--images N] [--modes caption,fast,classic]
                                               (stage 7: images/hour, batched captions and embeddings)
                           interrogate-bench --clip-parity DIR
                           interrogate-bench [--json FILE] --turbo-quality [POOL[:BATCH[:MARGIN]],…]  (turbo vs best)
                    """)
                return
            default:
                fail("unknown argument \(argument)", status: 2)
            }
        }
        printSetting()
        if let turboQuality {
            let rows = try TurboQuality.run(settings: turboQuality)
            TurboQuality.printRows(rows)
            try write(rows, toJSON: jsonPath)
            return
        }
        var results: [Measurement] = []
        func wanted(_ stage: String) -> Bool { stageFilter.map { $0 == stage } ?? true }
        if wanted("1") { results += sgemmProbe(runs: runs) }
        if wanted("2") { results += try clipImageStage(runs: max(2, runs / 3)) }
        if wanted("3") { results += try TextStages.labelEmbedding(runs: max(2, runs / 3), sampleSize: 2048) }
        if wanted("4") { results += try TextStages.chainStep(runs: max(2, runs / 3)) }
        if wanted("5") { results += try BlipStage.run(runs: max(2, runs / 3)) }
        printTable(results)
        try write(results, toJSON: jsonPath)
    }

    /// Writes `value` as ``prettyJSON(_:)`` to `path`, when there is one.
    static func write(_ value: some Encodable, toJSON path: String?) throws {
        guard let path else { return }
        try prettyJSON(value).write(to: URL(fileURLWithPath: path))
    }

    /// `value` as JSON with indentation and sorted keys: every report this tool writes.
    static func prettyJSON(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(value)
    }

    /// Stage 2: CLIP image embeddings, ViT-B/32 and ViT-L/14, batch 1 and 8, each
    /// with its efficiency: its GFLOP/s (FLOPs actually executed) over the sgemm
    /// probe's at the tower's own linear-layer shapes, measured in the same process.
    static func clipImageStage(runs: Int) throws -> [Measurement] {
        var results: [Measurement] = []
        for (name, json) in [("ViT-B/32", BenchmarkModels.vitB32), ("ViT-L/14", BenchmarkModels.vitL14)] {
            let model = try BenchmarkModels.clip(json)
            for batch in [1, 8] {
                let config = model.configuration.visionConfig
                let pixels = BenchmarkModels.pixels(batch: batch, size: config.imageSize)
                let flops = BenchmarkModels.vitFlops(config, images: batch)
                var tower = try measure(stage: "2 clip image", "\(name) batch \(batch)", runs: runs, flops: flops,
                                        items: Double(batch)) {
                    _ = try model.imageEmbeddings(pixels)
                }
                let probe = linearProbe(BenchmarkModels.vitLinearShapes(config, images: batch), runs: runs)
                let executed = BenchmarkModels.vitFlops(config, images: batch, pooledLastLayer: true)
                tower.efficiency = executed / tower.medianSeconds / probe.flopsPerSecond
                tower.cpuEfficiency = tower.cpuMedianSeconds.map { executed / $0 / (probe.flops / probe.cpuSeconds) }
                results.append(tower)
                results.append(probe.measurement(stage: "2 clip image", "\(name) batch \(batch) linear layers, sgemm probe"))
            }
        }
        return results
    }

    /// The sgemm probe over a model's linear layers: each distinct shape `[M, N, K]`
    /// timed alone (`y = x · Wᵀ`), its median multiplied by how often the model runs it.
    struct LinearProbe {
        var seconds = 0.0, cpuSeconds = 0.0, flops = 0.0
        var flopsPerSecond: Double { flops / seconds }

        func measurement(stage: String, _ name: String) -> Measurement {
            Measurement(stage: stage, name: name, runs: 1, medianSeconds: seconds, minSeconds: seconds, maxSeconds: seconds,
                        gflops: flops / seconds / 1e9, itemsPerSecond: nil, peakResidentMB: peakResidentMegabytes(),
                        cpuMedianSeconds: cpuSeconds, threadCPUMedianSeconds: nil, threadCPUGflops: nil)
        }
    }

    static func linearProbe(_ shapes: [(m: Int, n: Int, k: Int, count: Int)], runs: Int) -> LinearProbe {
        var probe = LinearProbe()
        for (m, n, k, count) in shapes {
            let x = (0..<(m * k)).map { Float($0 % 7) * 0.01 }
            let w = (0..<(n * k)).map { Float($0 % 5) * 0.01 }
            var y = [Float](repeating: 0, count: m * n)
            let one = measure(stage: "", "", runs: max(3, runs), profiled: false) {
                sgemm(transposeB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &y, ldc: n)
            }
            probe.seconds += one.medianSeconds * Double(count)
            probe.cpuSeconds += (one.cpuMedianSeconds ?? 0) * Double(count)
            probe.flops += 2 * Double(m * n * k * count)
        }
        return probe
    }

    /// Stage 1: `y[M, N] = x[M, K] · Wᵀ` at the shapes the models run, through
    /// ``sgemm`` (the library's path: the BLAS, or the skinny kernel for M ≤ 8).
    /// The skinny shapes also run through the BLAS alone (`… via BLAS`) and as
    /// one GEMV (`… via BLAS sgemv`, M = 1), for comparison.
    static func sgemmProbe(runs: Int) -> [Measurement] {
        let shapes: [(String, Int, Int, Int)] = [
            ("ViT-L/14 qkv 257x1024x1024", 257, 1024, 1024),
            ("ViT-L/14 mlp 257x4096x1024", 257, 4096, 1024),
            ("ViT-L/14 mlp 257x1024x4096", 257, 1024, 4096),
            ("ViT-L/14 batch8 2056x4096x1024", 2056, 4096, 1024),
            ("text 77x768x768", 77, 768, 768),
            ("text batch 4096x768x768", 4096, 768, 768),
            ("decoder step 3x768x768", 3, 768, 768),
            ("decoder step 1x768x768", 1, 768, 768),
            ("decoder step 1x3072x768", 1, 3072, 768),
            ("decoder step 1x768x3072", 1, 768, 3072),
            ("skinny 1x1024x4096", 1, 1024, 4096),
            ("skinny 1x4096x1024", 1, 4096, 1024),
            ("beams 3x3072x768", 3, 3072, 768),
            ("beams 8x768x768", 8, 768, 768),
            ("beams 6x768x768", 6, 768, 768),
            ("beams 4x768x768", 4, 768, 768),
            ("beams 6x3072x768", 6, 3072, 768),
        ]
        var results: [Measurement] = []
        for (name, m, n, k) in shapes {
            let x = (0..<(m * k)).map { Float($0 % 7) * 0.01 }
            let w = (0..<(n * k)).map { Float($0 % 5) * 0.01 }
            var y = [Float](repeating: 0, count: m * n)
            let flops = 2 * Double(m * n * k)
            // Short products repeat so that one timed run lasts ~50 ms.
            let repeats = max(1, Int(2.5e9 / flops / 20))
            results.append(measure(stage: "1 sgemm", name, runs: runs, repeats: repeats, flops: flops) {
                sgemm(transposeB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &y, ldc: n)
            })
            guard m <= skinnyMaxRows else { continue }
            results.append(measure(stage: "1 sgemm", "\(name) via BLAS", runs: runs, repeats: repeats, flops: flops) {
                sgemmBLAS(transposeB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &y, ldc: n)
            })
            if m == 1 {
                results.append(measure(stage: "1 sgemm", "\(name) via BLAS sgemv", runs: runs, repeats: repeats, flops: flops) {
                    sgemvBLAS(rows: n, cols: k, a: w, lda: k, x: x, y: &y)
                })
            }
        }
        results.append(readBound(n: 1024, k: 4096, runs: runs))
        return results
    }

    /// What reading an `[n, k]` weight matrix alone allows a one-row product
    /// (2 FLOPs per 4-byte weight, so GFLOP/s = GB/s ÷ 2): the matrix summed once
    /// with eight independent 4-lane sums (plain Swift SIMD, as the skinny kernel),
    /// from wherever repeated reads leave it (for 16 MB: the L3 cache).
    static func readBound(n: Int, k: Int, runs: Int) -> Measurement {
        let w = (0..<(n * k)).map { Float($0 % 5) * 0.01 }
        let flops = 2 * Double(n * k)
        var total: Float = 0
        let result = measure(stage: "1 sgemm", "skinny 1x\(n)x\(k) read bound (its weights only read)", runs: runs,
                             repeats: max(1, Int(2.5e9 / flops / 20)), flops: flops) {
            total += w.withUnsafeBufferPointer { buffer in
                let p = UnsafeRawPointer(buffer.baseAddress!)
                var a = SIMD16<Float>(), b = a
                var i = 0
                while i + 32 <= buffer.count {
                    a += p.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                    b += p.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
                    i += 32
                }
                return (a + b).sum()
            }
        }
        precondition(total.isFinite, "read bound: the sum keeps the reads")
        return result
    }
}
