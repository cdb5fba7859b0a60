import ClipInterrogator
import Foundation
import NeuralCore
import NeuralModels
import TestSupport
import XCTest

/// A second backbone defined outside the library, through its public API only:
/// an ``ImageTextEncoder`` of its own name built from CLIP's towers, without the
/// optional shared-prefix capability, and a caption model of its own.
struct ToyEncoder: ImageTextEncoder {
    let towers: CLIPModel
    let vocabulary: CLIPTokenizer
    let processor: CLIPImageProcessor

    var embeddingDimension: Int { towers.embeddingDimension }
    var contextLength: Int { vocabulary.contextLength }
    var imageProcessor: any ImageProcessor { processor }
    func tokenize(_ text: String) -> [Int] { vocabulary.encodeUnpadded(text).map { Int($0) } }
    func imageEmbeddings(_ pixels: Tensor) throws -> Tensor { normalizedRows(try towers.imageFeatures(pixels)) }
    func textEmbeddings(_ tokens: [[Int]]) throws -> Tensor { normalizedRows(try towers.textFeatures(tokens)) }
}

/// A caption model that always says the same thing.
struct FixedCaptioner: ImageCaptioning {
    let text: String
    func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> String { text }
}

/// Every mode runs through ``Interrogator`` on a backbone the library does not
/// know, and gives what the same weights give as a ``CLIPEncoder``.
final class SecondBackboneTests: XCTestCase {
    func testEveryModeRunsOnABackboneDefinedOutsideTheLibrary() throws {
        let model = try CLIPModel(directory: Fixtures.url("interrogator/clip"))
        let tokenizer = try CLIPTokenizer(directory: Fixtures.url("clip-tokenizer"))
        let processor = CLIPImageProcessor(size: 32)
        var configuration = InterrogatorConfiguration(encoderName: "toy/second-backbone")
        let reference = try LabelSet.reference()
        func first(_ list: LabelSet.List, _ count: Int) -> LabelSet.List {
            LabelSet.List(name: list.name, title: list.title, labels: Array(list.labels.prefix(count)))
        }
        configuration.labelSet = LabelSet(artists: first(reference.artists, 40), flavors: first(reference.flavors, 200),
                                          mediums: reference.mediums, movements: reference.movements,
                                          trendings: reference.trendings, negative: reference.negative)
        let captioner = FixedCaptioner(text: "a painting of a lighthouse")
        let toy = Interrogator(encoder: ToyEncoder(towers: model, vocabulary: tokenizer, processor: processor),
                               captioner: captioner, configuration: configuration, customTables: [("extras", ["glowing", "foggy"])])
        let clip = Interrogator(encoder: CLIPEncoder(model: model, tokenizer: tokenizer, processor: processor),
                                captioner: captioner, configuration: configuration, customTables: [("extras", ["glowing", "foggy"])])
        XCTAssertFalse(toy.encoder is any PrefixSharingTextEncoder, "the toy takes the chain's plain path")

        let image = try ImageDecoder.decode(contentsOf: Fixtures.url("blip/image0.png"))
        var short = InterrogationOptions() // shorter chains keep the test quick
        (short.minFlavors, short.maxFlavors) = (4, 8)
        var style = short
        style.subject = "a castle on a hill"
        var withNegative = short
        withNegative.includeNegative = true
        let runs: [(InterrogationMode, InterrogationOptions)] = InterrogationMode.allCases.map { ($0, short) }
            + [(.best, style), (.fast, withNegative)]
        for (mode, options) in runs {
            let ours = try toy.interrogate([image], mode: mode, options: options)
            let theirs = try clip.interrogate([image], mode: mode, options: options)
            XCTAssertEqual(ours.mode, mode)
            XCTAssertEqual(ours.caption, theirs.caption, "\(mode) caption")
            XCTAssertEqual(ours.prompt, theirs.prompt, "\(mode) prompt")
            XCTAssertEqual(ours.negativePrompt, theirs.negativePrompt, "\(mode) negative prompt")
            XCTAssertEqual(ours.analysis?.map(\.table), theirs.analysis?.map(\.table), "\(mode) analysis tables")
            for (a, b) in zip(ours.analysis ?? [], theirs.analysis ?? []) {
                XCTAssertEqual(a.matches.map(\.label), b.matches.map(\.label), "\(mode) \(a.table) labels")
                assertClose(a.matches.map(\.similarity), b.matches.map(\.similarity), tolerance: 1e-5, "\(mode) \(a.table) scores")
            }
            switch mode {
            case .negative: XCTAssertFalse(ours.negativePrompt?.isEmpty ?? true, "a negative prompt")
            case .analyze: XCTAssertEqual(ours.analysis?.count, 6, "five tables and the user's")
            default: XCTAssertTrue(ours.prompt?.hasPrefix(options.subject ?? captioner.text) ?? false, "\(mode): \(ours.prompt ?? "nil")")
            }
        }
    }
}
