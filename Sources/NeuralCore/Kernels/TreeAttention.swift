/// Causal multi-head attention over a token tree that continues one shared
/// prefix (many texts that start alike, encoded with each shared token once).
///
/// Node `n` of the tree holds one token; `parents[n]` is the node before it
/// (−1 for a node right after the prefix) and `depths[n]` its distance from the
/// prefix (0 right after it). A query at node `n` attends to every prefix key and
/// to the keys of the path from the tree's first level down to `n` itself, in
/// that order: exactly what the causal sequence `prefix + path(n)` would see, so
/// each node's result equals encoding that sequence alone.
///
/// The prefix part is one GEMM per head over all query rows; the path part is a
/// short loop per query (a path is as long as a label's tokens). Heads run in
/// parallel on ``Threading``'s threads, each with scratch of its own.
///
/// - Parameters:
///   - out: `[Q, H·D]`, row stride `ldo`.
///   - ldo: the row stride of `out`.
///   - q: `[Q, H·D]`, row stride `ldq`; row `r` is the query of node `queryNodes[r]`.
///   - ldq: the row stride of `q`.
///   - queryNodes: `[Q]` node indices (nil: the queries are nodes `0..<Q`).
///   - queryCount: `Q`.
///   - kNodes: `[N, H·D]`, row stride `ldk`: every node's key.
///   - ldk: the row stride of `kNodes`.
///   - vNodes: `[N, H·D]`, row stride `ldv`: every node's value.
///   - ldv: the row stride of `vNodes`.
///   - kPrefix: `[P, H·D]`, row stride `ldPrefix`: the prefix's keys.
///   - vPrefix: `[P, H·D]`, row stride `ldPrefix`: the prefix's values.
///   - prefixLength: `P`.
///   - ldPrefix: the row stride of `kPrefix` and `vPrefix` (default `H·D`).
///   - parents: `[N]`: each node's parent, −1 right after the prefix.
///   - depths: `[N]`: each node's distance from the prefix.
///   - maxDepth: the largest of `depths`.
///   - heads: `H`.
///   - headDim: `D`.
///   - scale: usually `1/√D`.
///   - scratch: `Q·(P + maxDepth + 1)` floats, used when the heads run one after
///     another on the calling thread.
public func treeCausalAttention(
    _ out: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int, queryNodes: UnsafePointer<Int32>?, queryCount: Int,
    kNodes: UnsafePointer<Float>, ldk: Int, vNodes: UnsafePointer<Float>, ldv: Int,
    kPrefix: UnsafePointer<Float>, vPrefix: UnsafePointer<Float>, prefixLength: Int, ldPrefix: Int? = nil,
    parents: UnsafePointer<Int32>, depths: UnsafePointer<Int32>, maxDepth: Int,
    heads: Int, headDim: Int, scale: Float,
    scratch: UnsafeMutablePointer<Float>
) {
    let head = TreeAttentionHead(
        out: out, ldo: ldo, q: q, ldq: ldq, queryNodes: queryNodes, queryCount: queryCount,
        kNodes: kNodes, ldk: ldk, vNodes: vNodes, ldv: ldv, kPrefix: kPrefix, vPrefix: vPrefix,
        prefixLength: prefixLength, ldPrefix: ldPrefix ?? heads * headDim, parents: parents, depths: depths,
        maxDepth: maxDepth, headDim: headDim, scale: scale)
    if Threading.threadCount == 1 || Threading.isInParallelLoop || heads == 1 {
        for h in 0..<heads { head.run(column: h * headDim, scratch: scratch) }
        return
    }
    Threading.parallelFor(heads) { h in
        Workspace.withScratch(queryCount * (prefixLength + maxDepth + 1)) { head.run(column: h * headDim, scratch: $0) }
    }
}

/// The operands of ``treeCausalAttention(_:ldo:q:ldq:queryNodes:queryCount:kNodes:ldk:vNodes:ldv:kPrefix:vPrefix:prefixLength:ldPrefix:parents:depths:maxDepth:heads:headDim:scale:scratch:)``
/// and its work for one head.
private struct TreeAttentionHead {
    let out: UnsafeMutablePointer<Float>, ldo: Int
    let q: UnsafePointer<Float>, ldq: Int, queryNodes: UnsafePointer<Int32>?, queryCount: Int
    let kNodes: UnsafePointer<Float>, ldk: Int, vNodes: UnsafePointer<Float>, ldv: Int
    let kPrefix: UnsafePointer<Float>, vPrefix: UnsafePointer<Float>, prefixLength: Int, ldPrefix: Int
    let parents: UnsafePointer<Int32>, depths: UnsafePointer<Int32>, maxDepth: Int
    let headDim: Int, scale: Float

    /// The head whose columns start at `column`, with `Q·(P + maxDepth + 1)` floats of scratch.
    func run(column: Int, scratch: UnsafeMutablePointer<Float>) {
        let pathLength = maxDepth + 1
        let prefixScores = scratch // [Q, P]
        let pathScores = scratch + queryCount * prefixLength // [Q, maxDepth + 1], indexed by depth
        if prefixLength > 0 {
            sgemm(transposeB: true, m: queryCount, n: prefixLength, k: headDim, alpha: scale,
                  a: q + column, lda: ldq, b: kPrefix + column, ldb: ldPrefix, c: prefixScores, ldc: prefixLength)
        }
        for r in 0..<queryCount {
            let node = Int(queryNodes?[r] ?? Int32(r))
            let query = q + r * ldq + column
            let p = prefixScores + r * prefixLength, s = pathScores + r * pathLength
            let depth = Int(depths[node])
            var m = node
            while m >= 0 {
                s[Int(depths[m])] = scale * dot(query, kNodes + m * ldk + column, count: headDim)
                m = Int(parents[m])
            }
            let maximum = Swift.max(rowMaximum(p, count: prefixLength), rowMaximum(s, count: depth + 1))
            let sum = exponentiateShifted(p, count: prefixLength, maximum: maximum)
                + exponentiateShifted(s, count: depth + 1, maximum: maximum)
            scaleRow(p, count: prefixLength, by: 1 / sum)
            scaleRow(s, count: depth + 1, by: 1 / sum)
        }
        if prefixLength > 0 {
            sgemm(m: queryCount, n: headDim, k: prefixLength, a: prefixScores, lda: prefixLength,
                  b: vPrefix + column, ldb: ldPrefix, c: out + column, ldc: ldo)
        } else {
            for r in 0..<queryCount { (out + r * ldo + column).update(repeating: 0, count: headDim) }
        }
        for r in 0..<queryCount {
            let s = pathScores + r * pathLength
            let row = out + r * ldo + column
            var m = Int(queryNodes?[r] ?? Int32(r))
            while m >= 0 {
                let weight = s[Int(depths[m])]
                let value = vNodes + m * ldv + column
                for d in 0..<headDim { row[d] += weight * value[d] }
                m = Int(parents[m])
            }
        }
    }
}

/// `Σ a[i]·b[i]` in eight interleaved partial sums (vectorisable).
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var partial = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        partial += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var sum = partial.sum()
    while i < count {
        sum += a[i] * b[i]
        i += 1
    }
    return sum
}

/// Naive twin of ``treeCausalAttention(_:ldo:q:ldq:queryNodes:queryCount:kNodes:ldk:vNodes:ldv:kPrefix:vPrefix:prefixLength:ldPrefix:parents:depths:maxDepth:heads:headDim:scale:scratch:)``
/// (contiguous rows, every node a query): each node's path is written out as a
/// sequence after the prefix and attended to with explicit loops in `Double`.
public func treeCausalAttentionNaive(
    _ out: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, kNodes: UnsafePointer<Float>, vNodes: UnsafePointer<Float>, nodeCount: Int,
    kPrefix: UnsafePointer<Float>, vPrefix: UnsafePointer<Float>, prefixLength: Int,
    parents: [Int], heads: Int, headDim: Int, scale: Float
) {
    let width = heads * headDim
    for n in 0..<nodeCount {
        var path: [Int] = []
        var m = n
        while m >= 0 { path.insert(m, at: 0); m = parents[m] }
        let keys = (0..<prefixLength).map { kPrefix + $0 * width } + path.map { kNodes + $0 * width }
        let values = (0..<prefixLength).map { vPrefix + $0 * width } + path.map { vNodes + $0 * width }
        for h in 0..<heads {
            let column = h * headDim
            var scores = keys.map { key in
                (0..<headDim).reduce(0.0) { $0 + Double(q[n * width + column + $1]) * Double(key[column + $1]) } * Double(scale)
            }
            let maximum = scores.max() ?? 0
            scores = scores.map { ($0 - maximum).exponential }
            let sum = scores.reduce(0, +)
            for d in 0..<headDim {
                var acc = 0.0
                for (j, value) in values.enumerated() { acc += scores[j] / sum * Double(value[column + d]) }
                out[n * width + column + d] = Float(acc)
            }
        }
    }
}
