import TreeModel

/// Path-dependent TreeSHAP as Lundberg et al. wrote it (Algorithm 2, arXiv:1802.03888): a
/// recursion over the tree that extends and unwinds the path of unique features. O(L·D²) per
/// tree. `TreeExplainer` uses it for trees whose paths hold too many distinct features for its
/// tables, and the tests use it as the oracle for the fast form.
enum ReferenceTreeSHAP {
    struct PathElement {
        var feature: Int
        var zero: Double
        var one: Double
        var weight: Double
    }

    /// Adds the tree's contributions for `x` to `phi` (one entry per feature).
    static func add(_ tree: Tree, _ x: UnsafeBufferPointer<Double>, to phi: UnsafeMutableBufferPointer<Double>) {
        guard tree.internalCount > 0 else { return }
        recurse(tree, x, phi, node: 0, path: [], zero: 1, one: 1, feature: -1)
    }

    static func cover(_ tree: Tree, _ child: Int32) -> Double {
        child < 0 ? tree.leafCover[Int(~child)] : tree.internalCover[Int(child)]
    }

    static func recurse(
        _ tree: Tree, _ x: UnsafeBufferPointer<Double>, _ phi: UnsafeMutableBufferPointer<Double>,
        node: Int32, path parent: [PathElement], zero: Double, one: Double, feature: Int
    ) {
        let path = extend(parent, zero: zero, one: one, feature: feature)
        if node < 0 {
            let value = tree.leafValue[Int(~node)]
            for i in 1..<path.count {
                let w = unwoundSum(path, i)
                let e = path[i]
                phi[e.feature] += w * (e.one - e.zero) * value
            }
            return
        }
        let n = Int(node)
        let f = Int(tree.splitFeature[n])
        let left = tree.goesLeft(node: n, x[f])
        let hot = left ? tree.leftChild[n] : tree.rightChild[n]
        let cold = left ? tree.rightChild[n] : tree.leftChild[n]
        let total = tree.internalCover[n]
        var path2 = path
        var incomingZero = 1.0, incomingOne = 1.0
        if let k = path2.indices.dropFirst().first(where: { path2[$0].feature == f }) {
            incomingZero = path2[k].zero
            incomingOne = path2[k].one
            path2 = unwind(path2, k)
        }
        let hotZero = total > 0 ? cover(tree, hot) / total : 0
        let coldZero = total > 0 ? cover(tree, cold) / total : 0
        recurse(tree, x, phi, node: hot, path: path2, zero: incomingZero * hotZero, one: incomingOne, feature: f)
        recurse(tree, x, phi, node: cold, path: path2, zero: incomingZero * coldZero, one: 0, feature: f)
    }

    static func extend(_ parent: [PathElement], zero: Double, one: Double, feature: Int) -> [PathElement] {
        var m = parent
        let l = m.count
        m.append(PathElement(feature: feature, zero: zero, one: one, weight: l == 0 ? 1 : 0))
        var i = l - 1
        while i >= 0 {
            m[i + 1].weight += one * m[i].weight * Double(i + 1) / Double(l + 1)
            m[i].weight = zero * m[i].weight * Double(l - i) / Double(l + 1)
            i -= 1
        }
        return m
    }

    static func unwind(_ path: [PathElement], _ i: Int) -> [PathElement] {
        var m = path
        let l = m.count - 1
        let one = m[i].one, zero = m[i].zero
        var n = m[l].weight
        var j = l - 1
        while j >= 0 {
            if one != 0 {
                let t = m[j].weight
                m[j].weight = n * Double(l + 1) / (Double(j + 1) * one)
                n = t - m[j].weight * zero * Double(l - j) / Double(l + 1)
            } else {
                m[j].weight = m[j].weight * Double(l + 1) / (zero * Double(l - j))
            }
            j -= 1
        }
        for j in i..<l {
            m[j].feature = m[j + 1].feature
            m[j].zero = m[j + 1].zero
            m[j].one = m[j + 1].one
        }
        m.removeLast()
        return m
    }

    static func unwoundSum(_ path: [PathElement], _ i: Int) -> Double {
        let l = path.count - 1
        let one = path[i].one, zero = path[i].zero
        var n = path[l].weight
        var total = 0.0
        var j = l - 1
        while j >= 0 {
            if one != 0 {
                let t = n * Double(l + 1) / (Double(j + 1) * one)
                total += t
                n = path[j].weight - t * zero * Double(l - j) / Double(l + 1)
            } else {
                total += path[j].weight / zero * Double(l + 1) / Double(l - j)
            }
            j -= 1
        }
        return total
    }
}
