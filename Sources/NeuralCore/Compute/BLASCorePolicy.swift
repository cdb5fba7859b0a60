import Foundation

/// Which OpenBLAS CPU kernel ("core") to run, decided from what OpenBLAS picked
/// by itself, the CPU's feature flags and the environment. A pure function, so
/// every case is unit-tested; `BLAS.swift` applies its answer before the first
/// product.
///
/// Why: OpenBLAS releases do not know CPUs newer than themselves. Debian's 0.3.21
/// falls back to its SSE3 "Prescott" kernel on, for example, Emerald Rapids Xeons,
/// 4–5× slower than its AVX-512 "SkylakeX" kernel on the same machine. A
/// `DYNAMIC_ARCH` build carries every kernel and can switch in process.
///
/// Rules, in order:
/// 1. `OPENBLAS_CORETYPE` set (non-empty): the user's choice wins, nothing changes.
/// 2. ``optOutVariable`` (`NEURALCORE_BLAS_CORE`) set to `off`/`0`/`no`/`false`/
///    `keep`: nothing changes. Set to a core name: switch to that core (for tests
///    and for users who want this process, not its children, on another core).
/// 3. The CPU is an AMD Zen 4 (family 19h with AVX-512; Zen 3, the same family,
///    has none) and the core is not Zen: switch to Zen. OpenBLAS 0.3.21 gives Zen
///    4 its AVX-512 Cooperlake kernel, but Zen 4 runs 512-bit operations as two
///    256-bit halves, and the Zen (AVX2) kernel ran ViT-L/14 at batch 1 6–17%
///    faster, batches and the chain step even (Docs/performance.md).
/// 4. The reported core is below the AVX2 tier (an SSE or AVX-only generic
///    kernel) and the CPU supports a better tier: switch to the best core of the
///    CPU's tier that the library carries (Cooperlake with AVX512-BF16, else
///    SkylakeX, for AVX-512 F/BW/DQ/VL; Haswell for AVX2 + FMA; Sandybridge for AVX).
/// 5. Otherwise keep: a core at the AVX2 tier or above is OpenBLAS's deliberate
///    choice (Haswell or Zen on some AVX-512 CPUs) and close to the best.
enum BLASCorePolicy {
    /// The environment variable that opts out of (`off`) or forces (a core name)
    /// the automatic choice.
    static let optOutVariable = "NEURALCORE_BLAS_CORE"

    /// What to do about the core.
    enum Decision: Equatable, Sendable {
        /// Leave OpenBLAS's core as it is.
        case keep(KeepReason)
        /// Switch to the named core (OpenBLAS's spelling, e.g. "SkylakeX").
        case switchTo(String)
    }

    /// Why the core stays as it is.
    enum KeepReason: String, Equatable, Sendable {
        /// `OPENBLAS_CORETYPE` is set.
        case userCoreType = "OPENBLAS_CORETYPE is set"
        /// The opt-out variable says so.
        case optedOut = "automatic choice turned off"
        /// The core is already at the AVX2 tier or above (or not an x86 core).
        case alreadyGood = "already a fast core"
        /// The CPU supports nothing better that the library carries.
        case noBetterCore = "no better core for this CPU"
    }

    /// Capability tiers of OpenBLAS's x86-64 cores.
    enum Tier: Int, Comparable {
        case sse = 0, avx, avx2, avx512

        static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }
    }

    /// OpenBLAS's x86 core names by tier, lower-cased (its `corename` table).
    static let tiers: [String: Tier] = {
        var table: [String: Tier] = [:]
        for name in ["unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
                     "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat"] {
            table[name] = .sse
        }
        for name in ["sandybridge", "bulldozer", "piledriver", "steamroller"] { table[name] = .avx }
        for name in ["haswell", "excavator", "zen"] { table[name] = .avx2 }
        for name in ["skylakex", "cooperlake", "sapphirerapids"] { table[name] = .avx512 }
        return table
    }()

    /// The cores worth switching to for a tier, best first.
    static func candidates(for tier: Tier, flags: Set<String>) -> [String] {
        switch tier {
        case .avx512: flags.contains("avx512_bf16") ? ["Cooperlake", "SkylakeX"] : ["SkylakeX"]
        case .avx2: ["Haswell"]
        case .avx: ["Sandybridge"]
        case .sse: []
        }
    }

    /// The best tier the CPU's `/proc/cpuinfo` flags support.
    static func tier(of flags: Set<String>) -> Tier {
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return .avx512 }
        if flags.contains("avx2") && flags.contains("fma") { return .avx2 }
        if flags.contains("avx") { return .avx }
        return .sse
    }

    /// The CPU's maker and family, as `/proc/cpuinfo` gives them.
    struct CPUModel: Equatable, Sendable {
        /// `vendor_id`, e.g. "AuthenticAMD", "GenuineIntel".
        let vendor: String
        /// `cpu family`, e.g. 25 (19h: AMD Zen 3 and Zen 4), 6 (Intel).
        let family: Int

        /// An AMD Zen 3 or Zen 4 (family 19h).
        var isAMDFamily19h: Bool { vendor == "AuthenticAMD" && family == 0x19 }
    }

    /// The vendor and family on the first processor's lines of a `/proc/cpuinfo`
    /// text, or nil when either is missing.
    static func cpuModel(fromCPUInfo text: String) -> CPUModel? {
        func value(_ key: String) -> String? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
                  let colon = line.firstIndex(of: ":") else { return nil }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        guard let vendor = value("vendor_id"), let family = value("cpu family").flatMap({ Int($0) }) else { return nil }
        return CPUModel(vendor: vendor, family: family)
    }

    /// An AMD Zen 4: family 19h with AVX-512 (rule 3).
    static func isZen4(_ cpu: CPUModel?, flags: Set<String>) -> Bool {
        cpu?.isAMDFamily19h == true && tier(of: flags) == .avx512
    }

    /// Decides what to do.
    /// - Parameters:
    ///   - reportedCore: the core OpenBLAS picked (`openblas_get_corename()`).
    ///   - cpuFlags: the CPU's feature flags as Linux spells them (`avx512f`, `fma`, …).
    ///   - cpu: the CPU's vendor and family (nil: unknown).
    ///   - environment: the process environment.
    ///   - isAvailable: whether the library carries a core (a `gotoblas_<NAME>` table).
    static func decide(reportedCore: String, cpuFlags: Set<String>, cpu: CPUModel? = nil, environment: [String: String],
                       isAvailable: (String) -> Bool) -> Decision {
        if let coreType = environment["OPENBLAS_CORETYPE"], !coreType.isEmpty { return .keep(.userCoreType) }
        if let setting = environment[optOutVariable]?.trimmingCharacters(in: .whitespacesAndNewlines), !setting.isEmpty, setting.lowercased() != "auto" {
            if ["off", "0", "no", "false", "keep", "none"].contains(setting.lowercased()) { return .keep(.optedOut) }
            guard let forced = canonicalName(setting) else { return .keep(.optedOut) }
            if forced.lowercased() == reportedCore.lowercased() { return .keep(.alreadyGood) }
            return isAvailable(forced) ? .switchTo(forced) : .keep(.noBetterCore)
        }
        if isZen4(cpu, flags: cpuFlags), reportedCore.lowercased() != "zen", isAvailable("Zen") { return .switchTo("Zen") }
        guard let current = tiers[reportedCore.lowercased()], current < .avx2 else { return .keep(.alreadyGood) }
        let best = tier(of: cpuFlags)
        guard best > current else { return .keep(.noBetterCore) }
        var tier = best
        while tier > current {
            if let core = candidates(for: tier, flags: cpuFlags).first(where: isAvailable) { return .switchTo(core) }
            tier = Tier(rawValue: tier.rawValue - 1)!
        }
        return .keep(.noBetterCore)
    }

    /// ``BLAS/rowAlignment`` for an OpenBLAS core: 1 for the cores whose sums for
    /// a row of a product above OpenBLAS's small-matrix bound (M·N·K > 10⁶) do
    /// not depend on the product's row count, the row's place or the columns'
    /// split, 12 for the others. Checked on OpenBLAS 0.3.21 (this machine's CPUs
    /// run every x86 core up to Cooperlake but AMD's FMA4 ones) by comparing the
    /// rows of products of 1…432 rows, shifted by 1…12 rows, and cut into
    /// column ranges, at 768×768 and 1024×1024; `BLASTests` repeats the check
    /// for the core in force and for Haswell. SkylakeX, Cooperlake and
    /// Sandybridge: identical bits. Haswell and Zen: rows differ with the row
    /// count, with the row's place modulo 12 (places 0–5 and 6–11 of each block
    /// of 12 sum differently) and with the column range; with row counts that are
    /// multiples of 12 and the same column ranges they agree, up to 12,000 rows.
    /// The SSE cores (Prescott, …) differ too and agree the same way. Cores not
    /// checked (SapphireRapids, which these CPUs cannot run, the FMA4 cores, any
    /// later one) get 12.
    static func rowAlignment(core: String) -> Int {
        ["skylakex", "cooperlake", "sandybridge"].contains(core.lowercased()) ? 1 : 12
    }

    /// OpenBLAS's spelling of a core name given in any case, or nil when unknown.
    static func canonicalName(_ name: String) -> String? {
        let spellings = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Opteron", "Opteron_SSE3",
                         "Barcelona", "Nano", "Bobcat", "Sandybridge", "Bulldozer", "Piledriver", "Steamroller",
                         "Haswell", "Excavator", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]
        return spellings.first { $0.lowercased() == name.lowercased() }
    }

    /// The `gotoblas_<NAME>` symbol that holds a core's kernel table.
    static func tableSymbol(_ core: String) -> String { "gotoblas_" + core.uppercased() }

    /// The feature flags on the first `flags` line of a `/proc/cpuinfo` text.
    static func cpuFlags(fromCPUInfo text: String) -> Set<String> {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
