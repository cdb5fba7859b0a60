import ArgumentParser
import ClipInterrogator
import Foundation
import NeuralCore

/// The inputs a run works on, as the command line names them. `interrogate
/// merge` takes the same options to list what the shards should hold.
struct InputOptions: ParsableArguments {
    @Option(name: [.customShort("i"), .long], help: "An image file (repeatable; as the reference's run_cli.py -i).")
    var image: [String] = []

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp(
        "Interrogate every .jpg/.jpeg/.png in this folder (any letter case).",
        discussion: "Without --output and --format the results go to DIR/desc.csv, as the reference's run_cli.py writes them."))
    var folder: String?

    @Flag(name: .long, help: "With --folder, include subfolders.")
    var recursive = false

    @Option(name: .long, help: "A file listing image paths, one per line ('-' reads standard input); results are named by the paths as listed.")
    var filesFrom: String?

    @Option(name: .long, help: ArgumentHelp(
        "WebDataset tar shards, read in place (repeatable; brace ranges as in shard-{00000..00099}.tar).",
        discussion: "Each sample's first .jpg/.jpeg/.png member is interrogated; results are named by the sample key (__key__)."))
    var webdataset: [String] = []

    /// Whether no input is named.
    var isEmpty: Bool { image.isEmpty && folder == nil && filesFrom == nil && webdataset.isEmpty }

    /// Every input, in order: image files (named as given), the folder's images
    /// (named relative to it), the listed files (named as listed), the WebDataset
    /// samples (named by key).
    /// - Throws: `ValidationError` for a folder without images or an unreadable
    ///   list; the pattern and folder errors.
    func items() throws -> [BatchItem] {
        var items = image.map { BatchItem(url: URL(fileURLWithPath: $0), name: $0) }
        if let folder {
            let root = URL(fileURLWithPath: folder)
            let found = try ImageInputs.images(in: root, recursive: recursive)
            if found.isEmpty {
                throw ValidationError("--folder \(folder) holds no .jpg, .jpeg or .png files" + (recursive ? "" : " (add --recursive for subfolders)"))
            }
            items += found.map { BatchItem(url: $0, name: ImageInputs.relativePath(of: $0, to: root)) }
        }
        if let filesFrom {
            let data: Data
            do {
                data = filesFrom == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                    : try readRegularFile(filesFrom, limit: maximumTextFileBytes)
            } catch {
                throw ValidationError("--files-from \(filesFrom): \(error)")
            }
            items += ImageInputs.files(listedIn: String(decoding: data, as: UTF8.self))
        }
        return items + (try ImageInputs.webDatasetItems(webdataset))
    }
}
