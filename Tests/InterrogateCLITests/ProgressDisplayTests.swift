import ClipInterrogator
import Foundation
@testable import interrogate
import NeuralModels
import XCTest

/// The terminal display replayed on a tiny screen model: what a terminal shows
/// after each write, so clearing and redrawing are checked as a user sees them.
final class ProgressDisplayTests: XCTestCase {
    /// A terminal that understands what the display writes: text, `\n`, `\r`,
    /// erase to end of line (`ESC[K`) and cursor up (`ESC[1A`).
    struct Screen {
        var lines = [""]
        var row = 0, column = 0

        mutating func feed(_ text: String) {
            var scalars = Array(text.unicodeScalars)[...]
            while let c = scalars.popFirst() {
                switch c {
                case "\n":
                    row += 1
                    column = 0
                    if row == lines.count { lines.append("") }
                case "\r":
                    column = 0
                case "\u{1B}":
                    var sequence = ""
                    while let next = scalars.popFirst() {
                        sequence.unicodeScalars.append(next)
                        if next.properties.isAlphabetic { break }
                    }
                    if sequence == "[K" { lines[row] = String(lines[row].prefix(column)) }
                    else if sequence == "[1A" { row = max(0, row - 1) }
                    else { XCTFail("unexpected control sequence ESC\(sequence)") }
                default:
                    var line = Array(lines[row])
                    while line.count < column { line.append(" ") }
                    if column < line.count { line[column] = Character(c) } else { line.append(Character(c)) }
                    lines[row] = String(line)
                    column += 1
                }
            }
        }

        var visible: [String] { lines.filter { !$0.isEmpty } }
    }

    final class Clock: @unchecked Sendable {
        var now = Date(timeIntervalSince1970: 0)
    }

    func testTheDisplayRedrawsInPlaceAndLeavesNothingBehind() {
        var screen = Screen()
        let clock = Clock()
        let display = ProgressDisplay(interactive: true, clock: { clock.now }, write: { screen.feed($0) })
        display.begin(images: 4)
        XCTAssertEqual(screen.visible.count, 1)
        XCTAssertTrue(screen.visible[0].hasPrefix("[------------------------] 0/4 images  0:00 elapsed"), screen.visible[0])

        for done in stride(from: 0, through: 100_970, by: 10_240) {
            clock.now += 2
            display.library(.buildingLabelTable(name: "flavors", done: min(done, 100_970), total: 100_970))
        }
        XCTAssertEqual(screen.visible.count, 2, "bar and stage, redrawn in place: \(screen.lines)")
        XCTAssertTrue(screen.visible[1].contains("embedding flavors labels: 92160/100970 labels, 5120 labels/s, ETA 0:02"),
                      screen.visible[1])

        display.imageFinished(done: 1, total: 4, name: "a.png")
        clock.now += 1
        display.library(.chainStep(name: "Flavor chain", step: 3, maxSteps: 32, cost: TextEncodingCost()))
        XCTAssertEqual(screen.visible.count, 2)
        XCTAssertTrue(screen.visible[0].hasPrefix("[######------------------] 1/4 images"), screen.visible[0])
        XCTAssertTrue(screen.visible[0].contains("img/s, ETA "), screen.visible[0])
        XCTAssertEqual(screen.visible[1], "  Flavor chain: step 3/32")

        display.message("note: something")
        XCTAssertEqual(screen.visible.first, "note: something", "a message goes above the display")
        XCTAssertEqual(screen.visible.count, 3)

        display.finish()
        XCTAssertEqual(screen.visible, ["note: something"], "the display is erased at the end")
    }

    func testPlainLinesOffATerminal() {
        var lines: [String] = []
        let clock = Clock()
        let display = ProgressDisplay(interactive: false, lineInterval: 10, clock: { clock.now }, write: { lines.append($0) })
        display.begin(images: 2)
        for done in stride(from: 0, through: 100_970, by: 1024) {
            clock.now += 1
            display.library(.buildingLabelTable(name: "flavors", done: min(done, 100_970), total: 100_970))
        }
        display.library(.buildingLabelTable(name: "flavors", done: 100_970, total: 100_970))
        display.imageFinished(done: 1, total: 2, name: "a.png")
        XCTAssertTrue(lines.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\u{1B}") && !$0.contains("\r") })
        let periodic = lines.filter { $0.hasPrefix("embedding flavors labels:") }
        XCTAssertEqual(periodic.count, 9, "one status line every ten seconds of a 98-second stage: \(lines)")
        XCTAssertTrue(lines.contains("embedded 100970 flavors labels in 1:38\n"), "\(lines)")
        XCTAssertTrue(lines.last!.hasPrefix("[1/2] a.png  (1:39 elapsed, 0.01 img/s, ETA 1:39)"), lines.last!)
    }
}
