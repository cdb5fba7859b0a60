import ArgumentParser
import ClipInterrogator

/// The demo command line tool. Its options arrive with the CLI issue; for now it
/// only describes itself.
@main
struct Interrogate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interrogate",
        abstract: "Turn an image into a text-to-image prompt (CLIP Interrogator in Swift).",
        discussion: "Not implemented yet: the library is being built bottom-up. See README.md."
    )

    func run() throws {
        print(Self.helpMessage())
    }
}
