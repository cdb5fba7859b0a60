import ClipInterrogator
import Dispatch
import Foundation
import HuggingFaceHub

/// The one progress display of the command, on standard error.
///
/// On a terminal: two lines redrawn in place, an overall bar (images done,
/// elapsed time, rate, ETA) and the current stage under it (download, label
/// embedding with its own rate and ETA, caption, chain step), erased when the
/// run ends or is interrupted. Results printed to the same terminal pass through
/// the display (``captureStandardOutput()``), which lifts itself out of their way.
///
/// Off a terminal: plain lines, one per finished image and, while a stage runs,
/// one every ``lineInterval`` seconds. `--quiet` creates no display at all.
final class ProgressDisplay: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`; reports come from the
    // batch loop, the interrogator's callbacks, the download client and the
    // standard-output relay thread.
    private let lock = NSLock()
    /// Whether to draw in place (a terminal) or print plain lines.
    let interactive: Bool
    /// Seconds between plain status lines off a terminal.
    let lineInterval: TimeInterval
    private let clock: () -> Date
    private let write: (String) -> Void

    private var start: Date
    private var imagesDone = 0, imagesTotal = 0
    private var stage: Stage?
    private var drawnLines = 0
    private var lastDraw = Date.distantPast
    private var lastLine = Date.distantPast
    private var relay: StandardOutputRelay?

    /// A task under way, with what is needed for its rate.
    struct Stage {
        var text: String
        var key: String
        var done: Double = 0
        var total: Double = 0
        var unit = ""
        var started: Date
    }

    /// A display writing with `write` (standard error by default); `interactive`
    /// nil means "standard error is a terminal".
    init(interactive: Bool? = nil, lineInterval: TimeInterval = 10, clock: @escaping () -> Date = Date.init,
         write: ((String) -> Void)? = nil) {
        self.interactive = interactive ?? (isatty(2) == 1)
        self.lineInterval = lineInterval
        self.clock = clock
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
        start = clock()
        lastLine = start // the first plain status line comes one interval in
    }

    // MARK: Reports

    /// The run is about to interrogate `total` images.
    func begin(images total: Int) {
        lock.withLock {
            imagesTotal = total
            start = clock()
            redraw(force: true)
        }
    }

    /// `done` of `total` images are finished, the last being `name`.
    func imageFinished(done: Int, total: Int, name: String) {
        lock.withLock {
            imagesDone = done
            imagesTotal = total
            stage = nil
            if interactive {
                redraw(force: true)
            } else {
                emitLine("[\(done)/\(total)] \(name)  (\(overallTiming()))")
            }
        }
    }

    /// Library progress: label embedding, caption tokens, chain steps.
    func library(_ event: InterrogatorProgress) {
        lock.withLock {
            switch event {
            case let .buildingLabelTable(_, _, total) where total < LabelTable.encodingBatch:
                return // smaller tables embed in one quick batch: reporting them is noise
            case let .buildingLabelTable(name, done, total):
                update(key: "labels \(name)", text: "embedding \(name) labels", done: done, total: total, unit: "labels")
                if !interactive && done == total {
                    emitLine("embedded \(total) \(name) labels in \(Self.clock(clock().timeIntervalSince(stage!.started)))")
                    stage = nil
                }
            case let .captioning(token, maxTokens):
                update(key: "caption", text: "caption: token \(token)/\(maxTokens)", done: token, total: maxTokens, unit: "")
            case let .chainStep(name, step, maxSteps, _):
                update(key: "chain \(name)", text: "\(name): step \(step)/\(maxSteps)", done: step, total: maxSteps, unit: "")
            }
        }
    }

    /// Download progress of a model file.
    func download(_ progress: HubDownloadProgress) {
        lock.withLock {
            let megabytes = Double(progress.completedBytes) / 1_048_576
            let total = progress.totalBytes.map { Double($0) / 1_048_576 }
            let text = "downloading \(progress.repository)/\(progress.file)"
            update(key: "download \(progress.repository)/\(progress.file)", text: text, done: megabytes, total: total ?? 0, unit: "MB")
            if !interactive && progress.fraction == 1 {
                emitLine("downloaded \(progress.repository)/\(progress.file)" + String(format: " (%.1f MB)", megabytes))
                stage = nil
            }
        }
    }

    /// Prints `text` as a line of its own (a note, a warning), the display
    /// lifted out of its way.
    func message(_ text: String) {
        lock.withLock {
            erase()
            write(text + "\n")
            redraw(force: true)
        }
    }

    /// Erases the display and hands standard output back; call once at the end
    /// (or on an interrupt).
    func finish() {
        let relay = lock.withLock { () -> StandardOutputRelay? in
            let relay = self.relay
            self.relay = nil
            return relay
        }
        relay?.stop()
        lock.withLock {
            erase()
            stage = nil
            imagesTotal = 0
        }
    }

    // MARK: Standard output

    /// On a terminal whose standard output is the same screen, routes standard
    /// output through the display: each chunk of results is written with the
    /// display erased first and redrawn after it, so results and progress never
    /// overwrite each other.
    func captureStandardOutput() {
        guard interactive, isatty(1) == 1 else { return }
        let relay = StandardOutputRelay { [weak self] chunk in
            guard let self else { return }
            self.lock.withLock {
                self.erase()
                chunk()
                self.redraw(force: true)
            }
        }
        lock.withLock { self.relay = relay }
    }

    // MARK: Drawing (called with the lock held)

    private func update(key: String, text: String, done: some BinaryInteger, total: some BinaryInteger, unit: String) {
        update(key: key, text: text, done: Double(done), total: Double(total), unit: unit)
    }

    private func update(key: String, text: String, done: Double, total: Double, unit: String) {
        let now = clock()
        if stage?.key != key { stage = Stage(text: text, key: key, started: now) }
        stage!.text = text
        stage!.done = done
        stage!.total = total
        stage!.unit = unit
        if interactive {
            redraw(force: false)
        } else if now.timeIntervalSince(lastLine) >= lineInterval {
            emitLine(stageLine(stage!, now: now) + "  (\(overallTiming()))")
        }
    }

    private func emitLine(_ line: String) {
        lastLine = clock()
        write(line + "\n")
    }

    /// Redraws the two lines (at most ten times a second unless `force`).
    private func redraw(force: Bool) {
        guard interactive else { return }
        let now = clock()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        var lines: [String] = []
        if imagesTotal > 0 { lines.append(overallLine()) }
        if let stage { lines.append("  " + stageLine(stage, now: now)) }
        let width = max(20, Self.terminalWidth() - 1) // never wrap: the erase counts lines
        let text = lines.map { Self.truncated($0, to: width) }.joined(separator: "\n")
        write(erasing() + text)
        drawnLines = lines.count
    }

    private func erase() {
        guard interactive, drawnLines > 0 else { return }
        write(erasing())
        drawnLines = 0
    }

    /// The control sequence that clears the lines drawn last and leaves the
    /// cursor at the start of the first.
    private func erasing() -> String {
        guard drawnLines > 0 else { return "" }
        return "\r\u{1B}[K" + String(repeating: "\u{1B}[1A\u{1B}[K", count: drawnLines - 1)
    }

    private func overallLine() -> String {
        let width = 24
        let filled = imagesTotal > 0 ? width * imagesDone / imagesTotal : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        return "[\(bar)] \(imagesDone)/\(imagesTotal) images  \(overallTiming())"
    }

    /// "0:12 elapsed, 0.08 img/s, ETA 0:45" (rate and ETA once an image is done).
    private func overallTiming() -> String {
        let elapsed = clock().timeIntervalSince(start)
        var text = "\(Self.clock(elapsed)) elapsed"
        if imagesDone > 0, elapsed > 0 {
            let rate = Double(imagesDone) / elapsed
            text += String(format: ", %.2f img/s", rate)
            if imagesDone < imagesTotal { text += ", ETA " + Self.clock(Double(imagesTotal - imagesDone) / rate) }
        }
        return text
    }

    /// "embedding flavors labels: 20480/100970 labels, 1234 labels/s, ETA 1:05".
    private func stageLine(_ stage: Stage, now: Date) -> String {
        guard !stage.unit.isEmpty else { return stage.text }
        let number = stage.unit == "MB" ? "%.1f" : "%.0f"
        var text = stage.text + ": " + String(format: number, stage.done)
        if stage.total > 0 { text += "/" + String(format: number, stage.total) }
        text += " " + stage.unit
        let elapsed = now.timeIntervalSince(stage.started)
        if stage.done > 0, elapsed > 0.5 {
            let rate = stage.done / elapsed
            text += String(format: ", %.0f %@/s", rate, stage.unit)
            if stage.total > stage.done { text += ", ETA " + Self.clock((stage.total - stage.done) / rate) }
        }
        return text
    }

    /// `m:ss`, or `h:mm:ss` from an hour on.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func truncated(_ line: String, to width: Int) -> String {
        line.count <= width ? line : String(line.prefix(width - 1)) + "…"
    }

    /// The width of the terminal on standard error (80 when unknown).
    static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}

/// Standard output routed through a pipe to a thread that hands each chunk to
/// the display, which writes it to the real standard output between erasing
/// and redrawing itself.
final class StandardOutputRelay: @unchecked Sendable {
    // @unchecked: the file descriptors are set once in init; `stop` runs once.
    private let original: Int32
    private let reader: Int32
    private let finished = DispatchSemaphore(value: 0)

    /// Starts relaying; `deliver` receives a closure that writes one chunk.
    init?(deliver: @escaping @Sendable (() -> Void) -> Void) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return nil }
        fflush(nil)
        original = dup(1)
        reader = ends[0]
        dup2(ends[1], 1)
        close(ends[1])
        lineBufferStandardOutput() // results reach the screen line by line, not at exit
        let (reader, original, finished) = (reader, original, finished)
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                let chunk = Array(buffer[0..<count])
                deliver {
                    chunk.withUnsafeBytes { bytes in
                        var offset = 0
                        while offset < bytes.count {
                            let written = Foundation.write(original, bytes.baseAddress! + offset, bytes.count - offset)
                            if written <= 0 { if errno == EINTR { continue } else { break } }
                            offset += written
                        }
                    }
                }
            }
            finished.signal()
        }
    }

    /// Puts the real standard output back and waits until everything written
    /// so far has reached it.
    func stop() {
        fflush(nil)
        dup2(original, 1) // closes the pipe's last writer: the thread reads to the end
        finished.wait()
        close(reader)
        close(original)
    }
}
