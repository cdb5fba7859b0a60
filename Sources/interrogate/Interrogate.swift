import ArgumentParser
import ClipInterrogator
import Foundation
import HuggingFaceHub
import NeuralCore
import NeuralModels

/// The `interrogate` command: a thin shell over the ClipInterrogator library.
/// `interrogate merge …` runs ``Merge`` instead.
@main
struct Interrogate: ParsableCommand {
    /// Runs `interrogate merge` when the first argument is `merge` (the
    /// command's own arguments are image files, which would take the word), else
    /// the interrogation.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "merge" {
            Merge.main(Array(arguments.dropFirst()))
        } else {
            main(arguments)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "interrogate",
        abstract: "Turn images into text-to-image prompts (CLIP Interrogator in Swift).",
        discussion: """
            MODEL is a local Hugging Face checkpoint directory, a repository id such as \
            openai/clip-vit-large-patch14, or one of the reference's names (ViT-L-14/openai, \
            ViT-B-32/openai, ViT-H-14/laion2b_s32b_b79k, ViT-bigG-14/laion2b_s39b_b160k, \
            blip-base, blip-large).

            Exit status: 0 when every input succeeded; 1 when any input failed (a summary is \
            printed to standard error) or the run could not start; 64 for invalid arguments \
            (including an --output that --resume cannot continue).

            Examples:
              interrogate --demo Docs/examples/a-red-square.png
              interrogate photo.jpg
              interrogate -f ~/Pictures -m fast          (writes ~/Pictures/desc.csv, as run_cli.py does)
              interrogate --folder ~/Pictures --format jsonl | jq .result.prompt
              interrogate --mode fast --format json photo.jpg
              interrogate --folder ~/Pictures --recursive --format csv --output desc.csv --resume
              interrogate --mode analyze --clip ViT-B-32/openai photo.png
              interrogate --subject "a castle on a hill" --mode best photo.jpg
              interrogate --webdataset 'shards/{00000..00099}.tar' --shard auto --shard-count 16 \\
                          --mode caption --format jsonl --output captions.jsonl --resume
              interrogate merge --webdataset 'shards/{00000..00099}.tar' --output captions.jsonl captions-*-of-00016.jsonl
            'interrogate merge --help' describes merging the outputs of a sharded run.
            See Docs/cli.md for every option, Docs/scale.md for datasets on Kubernetes and Slurm.
            """
    )

    @Argument(help: "Image files (JPEG or PNG).")
    var images: [String] = []

    @OptionGroup(title: "Inputs")
    var inputs: InputOptions

    @Option(name: .long, help: "Images captioned and embedded together (default 8); the next ones are prepared meanwhile.")
    var batchSize = 8

    @Option(name: [.customShort("m"), .long], help: "best, turbo, classic, fast, negative, caption or analyze.")
    var mode: InterrogationMode = .best

    @Option(name: [.customShort("c"), .long], help: "The CLIP model (directory, repository id or reference name; default ViT-L-14/openai).")
    var clip: String?

    @Option(name: .long, help: "The caption model (directory, repository id, blip-base or blip-large; default blip-large).")
    var caption: String?

    @Flag(name: .long, help: "Use the demo models and labels in Weights/demo (coloured shapes only; no network).")
    var demo = false

    @Option(name: .long, help: "A label-set folder (label-set.json and its lists) to rank instead of the reference's lists.")
    var labelSet: String?

    @Option(name: .long, help: "Style mode: use this text as the subject instead of a generated caption.")
    var subject: String?

    @Option(name: .long, help: "A text file of extra labels, one per line (repeatable); ranked with the flavors.")
    var labels: [String] = []

    @Flag(name: .long, help: "One prompt for all given images (the mean of their CLIP embeddings).")
    var combine = false

    @Flag(name: .long, help: "Also produce a negative prompt for each image.")
    var negative = false

    @Option(name: .long, help: "Fewest flavors best mode chains (the reference's min_flavors).")
    var minFlavors = InterrogationOptions().minFlavors

    @Option(name: .long, help: "Most flavors best, fast and negative mode add (the reference's max_flavors).")
    var maxFlavors = InterrogationOptions().maxFlavors

    @Option(name: .long, help: "Most tokens a caption may have (the reference's caption_max_length).")
    var captionMaxLength = InterrogatorConfiguration().captionMaxLength

    @Option(name: .long, help: "Labels per chunk of the ranking (the reference's chunk_size).")
    var chunkSize = InterrogatorConfiguration().chunkSize

    @Option(name: .long, help: "Flavors best and negative mode pre-select for the chain (the reference's flavor_intermediate_count).")
    var flavorIntermediateCount = InterrogatorConfiguration().flavorIntermediateCount

    @Option(name: .long, help: "text, json, jsonl or csv (default: text; csv for --folder without --output).")
    var format: OutputFormat?

    @Option(name: .long, help: "Write results to this file (default: standard output).")
    var output: String?

    @Flag(name: .long, help: "Skip images the --output file already holds and append the rest.")
    var resume = false

    @Flag(name: .long, help: "Also write each prompt to a .txt file next to its image.")
    var sidecar = false

    @Flag(name: .long, help: "With --sidecar, replace .txt files that hold other text (by default they are kept and the image fails).")
    var overwriteSidecars = false

    // `.unconditional`: "-1/4" is taken as the value (and refused by validate())
    // instead of as an unknown option.
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(
        "Process only shard I of N of the images (1-based, e.g. 2/4), or 'auto': the Slurm array task or Kubernetes Indexed Job's completion index.",
        discussion: "Shards are disjoint and cover every image. With --output FILE each shard writes FILE-<index>-of-<N> (0-based index); 'interrogate merge' combines them."))
    var shard: String?

    @Option(name: .long, help: "With --shard auto: the number of shards (a Kubernetes Indexed Job's completions; optional under Slurm).")
    var shardCount: Int?

    @Option(name: .long, parsing: .unconditional, help: "Threads for BLAS and the kernels (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Directory for cached label embeddings (default: $XDG_CACHE_HOME/clip-interrogator-swift, else ~/.cache/clip-interrogator-swift).")
    var cacheDir: String?

    @Flag(name: .long, help: "Exit 0 when the run finished even if some inputs failed (each is still reported: in the summary and, in an output file, as an error record); for batch engines that would retry a failed run.")
    var allowFailures = false

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    @Flag(name: .long, help: "Never use the network (as HF_HUB_OFFLINE=1).")
    var offline = false

    @Flag(name: .long, help: "Print the version and the BLAS library and CPU kernel in use, then exit.")
    var version = false

    mutating func validate() throws {
        if version { return }
        inputs.image = images + inputs.image
        images = []
        if inputs.isEmpty { throw ValidationError("give image files, --folder DIR, --files-from FILE or --webdataset SHARDS") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if sidecar && !inputs.webdataset.isEmpty { throw ValidationError("--sidecar writes beside image files; WebDataset samples have none") }
        // As in the reference, --min-flavors above --max-flavors is no error: the chain stops at the maximum.
        for (name, value, least) in [("--min-flavors", minFlavors, 0), ("--max-flavors", maxFlavors, 1),
                                     ("--caption-max-length", captionMaxLength, 1), ("--chunk-size", chunkSize, 1),
                                     ("--flavor-intermediate-count", flavorIntermediateCount, 1)] where value < least {
            throw ValidationError("\(name) must be at least \(least)")
        }
        if resume && destination.output == nil { throw ValidationError("--resume needs --output FILE (or a --folder, whose desc.csv it continues)") }
        if let shard, shard != "auto", (try? Shard(parsing: shard)) == nil {
            throw ValidationError("--shard takes I/N, two whole numbers with 1 ≤ I ≤ N, e.g. 2/4, or auto (got '\(shard)')")
        }
        if let shardCount, shard != "auto" || shardCount < 1 {
            throw ValidationError(shardCount < 1 ? "--shard-count must be at least 1" : "--shard-count goes with --shard auto")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        if overwriteSidecars && !sidecar { throw ValidationError("--overwrite-sidecars goes with --sidecar") }
        if resume && destination.format == .text {
            throw ValidationError("--resume cannot read text output back (image names may hold \": \" or line breaks); use --format jsonl, csv or json")
        }
        for (option, model) in [("--clip", clip), ("--caption", caption)] {
            guard let model else { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) {
                if !isDirectory.boolValue { throw ValidationError("\(option) \(model) is a file; give the model's folder (with config.json and model.safetensors)") }
            } else if model.hasPrefix("/") || model.hasPrefix("./") || model.hasPrefix("../") || model.hasPrefix("~") || model.hasSuffix("/") {
                throw ValidationError("\(option) \(model): no such folder")
            }
        }
        if demo && (clip != nil || caption != nil) { throw ValidationError("--demo picks both models; leave out --clip and --caption") }
        if combine && resume { throw ValidationError("--combine writes one result; --resume does not apply") }
    }

    func run() throws {
        if version {
            print("interrogate \(Interrogator.version)\nBLAS: \(BLAS.description)")
            return
        }
        let shard = try assignedShard()
        let items = try inputItems(shard: shard)
        let (format, output) = destination(shard: shard)
        try checkOutputs(items, output: output)
        // The output is opened (and locked, and a resumed file read) before the
        // models load, so a refused file fails at once.
        let writer: ResultWriter
        do {
            writer = try ResultWriter(format: format, url: output.map { URL(fileURLWithPath: $0) }, resume: resume,
                                      singleImage: items.count == 1 || combine)
        } catch let error as ResultWriterError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw error.isUsageError ? ExitCode.validationFailure : ExitCode.failure
        }
        let display = quiet ? nil : ProgressDisplay()
        let interrupts = display.map(Self.eraseOnInterrupt)
        defer {
            display?.finish()
            interrupts?.forEach { $0.cancel() }
        }
        if !demo, let advice = BLAS.advice { display?.message("note: \(advice)") }
        var configuration = demo ? try DemoModel.configuration() : InterrogatorConfiguration()
        configuration.threads = threads
        configuration.captionMaxLength = captionMaxLength
        configuration.chunkSize = chunkSize
        configuration.flavorIntermediateCount = flavorIntermediateCount
        // The demo's few labels embed in milliseconds: no cache unless asked for.
        configuration.cacheDirectory = cacheDir.map { URL(fileURLWithPath: $0) } ?? (demo ? nil : LabelEmbeddingCache.defaultDirectory())
        if let display { configuration.progress = { display.library($0) } }
        configuration.warnings = { warning in
            if let display { display.message("warning: \(warning)") } else { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        }
        if let labelSet { configuration.labelSet = try LabelSet(directory: URL(fileURLWithPath: labelSet)) }
        // Read the label lists now: missing data stops the run before its first image, not at each.
        if mode != .caption || negative { configuration.labelSet = try configuration.labelSet ?? LabelSet.reference() }
        let needsCaption = subject == nil && mode.usesCaption
        let (clipDirectory, captionDirectory) = demo
            ? (try DemoModel.clipDirectory, needsCaption ? try DemoModel.captionDirectory : nil)
            : try resolveModels(&configuration, needsCaption: needsCaption, display: display)
        let custom = try labels.map { path in
            (name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
             labels: try LabelList.loadLabels(contentsOf: URL(fileURLWithPath: path)))
        }
        let interrogator = try Interrogator.load(
            clipDirectory: clipDirectory, captionDirectory: captionDirectory,
            configuration: configuration, customTables: custom)

        var options = InterrogationOptions()
        options.subject = subject
        options.includeNegative = negative
        options.minFlavors = minFlavors
        options.maxFlavors = maxFlavors
        if output == nil { display?.captureStandardOutput() }
        let runner = BatchRunner(interrogator: interrogator, mode: mode, options: options, sidecar: sidecar,
                                 overwriteSidecars: overwriteSidecars, batchSize: batchSize,
                                 progress: display.map { display in { display.imageFinished(done: $0, total: $1, name: $2) } })
        display?.begin(images: combine ? 1 : items.count)
        let summary = combine ? runner.runCombined(items, writer: writer) : runner.run(items, writer: writer)
        try writer.close()
        display?.finish()
        if !quiet, self.output == nil, let file = output { // the folder's desc.csv, chosen for the user
            FileHandle.standardError.write(Data("results written to \(file)\n".utf8))
        }
        report(summary)
        if !summary.failures.isEmpty && !allowFailures { throw ExitCode.failure }
    }

    /// The format and file results go to: as given; for a folder with neither,
    /// `DIR/desc.csv` in CSV, as the reference's run_cli.py writes it.
    var destination: (format: OutputFormat, output: String?) {
        if let folder = inputs.folder, format == nil, output == nil {
            return (.csv, URL(fileURLWithPath: folder).appendingPathComponent("desc.csv").path)
        }
        return (format ?? .text, output)
    }

    /// ``destination`` with a shard's own file (`NAME-00003-of-00016.EXT`) for a
    /// sharded run writing to a regular file.
    func destination(shard: Shard?) -> (format: OutputFormat, output: String?) {
        let (format, output) = destination
        guard let shard, let output, !output.hasPrefix("/dev/") else { return (format, output) }
        return (format, shard.outputURL(for: URL(fileURLWithPath: output)).path)
    }

    /// The shard this process works on: none, `--shard I/N`, or `--shard auto`
    /// from the engine's environment (Slurm array, Kubernetes Indexed Job).
    /// - Throws: `ValidationError` naming what is missing or inconsistent.
    func assignedShard() throws -> Shard? {
        guard let shard else { return nil }
        do {
            return shard == "auto" ? try Shard.fromEnvironment(count: shardCount) : try Shard(parsing: shard)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// On Ctrl-C or SIGTERM, erases the progress display and hands standard
    /// output back (so what was finished is on screen and in the files) before
    /// exiting with the shell's status for the signal (130, 143).
    static func eraseOnInterrupt(_ display: ProgressDisplay) -> [DispatchSourceSignal] {
        guard display.interactive else { return [] }
        return [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                display.finish()
                FileHandle.standardError.write(Data("interrupted\n".utf8))
                Foundation.exit(128 + number)
            }
            source.resume()
            return source
        }
    }

    /// The CLIP and caption checkpoint folders named by --clip and --caption (found
    /// locally, in the hub cache or downloaded), with the label caches' model name set.
    func resolveModels(_ configuration: inout InterrogatorConfiguration, needsCaption: Bool,
                       display: ProgressDisplay?) throws -> (URL, URL?) {
        var environment = try HubEnvironment.current(userAgent: HubEnvironment.interrogatorUserAgent)
        if offline {
            environment.offline = true
            environment.offlineReason = "--offline"
        }
        var resolver = ModelResolver(environment: environment, aliases: .clipInterrogator)
        if let display { resolver.progress = { display.download($0) } }
        let clipModel = try resolver.resolve(clip ?? "ViT-L-14/openai", files: HubFileSet.clip)
        configuration.encoderName = try clipModel.labelCacheName()
        if mode != .caption || negative {
            configuration.precomputedCacheDirectory = ReferenceCaches.resolve(modelName: configuration.encoderName, with: resolver)
        }
        let captionModel = needsCaption ? try resolver.resolve(caption ?? "blip-large", files: HubFileSet.blip) : nil
        return (clipModel.directory, captionModel?.directory)
    }

    /// The images to process (then the shard's part of them), named as results
    /// will show them.
    /// - Throws: `ValidationError` for a folder without images.
    func inputItems(shard: Shard?) throws -> [BatchItem] {
        var items = try inputs.items()
        if let shard {
            items = shard.select(items)
            if items.isEmpty && !quiet { FileHandle.standardError.write(Data("note: shard \(shard) holds none of the images\n".utf8)) }
        }
        return items
    }

    /// Refuses outputs that would destroy inputs: an --output that is one of the
    /// images (or one of their sidecars), and sidecars two images would share.
    func checkOutputs(_ items: [BatchItem], output: String?) throws {
        if let output {
            let url = URL(fileURLWithPath: output)
            if let image = items.first(where: { ImageInputs.sameFile($0.url, url) }) {
                throw ValidationError("--output \(output) is the input image \(image.name); it would be overwritten")
            }
            if sidecar, let image = items.first(where: { ImageInputs.sameFile($0.sidecarURL, url) }) {
                throw ValidationError("--output \(output) is the sidecar of \(image.name); choose another file")
            }
        }
        if sidecar, let clash = ImageInputs.sidecarCollisions(items).first {
            throw ValidationError("--sidecar: \(clash.map(\.name).joined(separator: " and ")) would all write \(clash[0].sidecarURL.path)")
        }
    }

    func report(_ summary: BatchSummary) {
        guard !summary.failures.isEmpty || (!quiet && summary.skipped > 0) else { return }
        var text = "\(summary.succeeded) succeeded, \(summary.failures.count) failed"
        if summary.skipped > 0 { text += ", \(summary.skipped) skipped (already in \(destination.output ?? "the output"))" }
        for failure in summary.failures { text += "\n  \(failure.image): \(failure.reason)" }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

extension InterrogationMode: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}
