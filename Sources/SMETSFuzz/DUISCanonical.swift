import SMETSDUIS

extension FuzzTarget {
    /// Canonical XML of an accepted tree, both kinds: it returns or throws a typed error (a document
    /// with a processing instruction), never traps, and its octets read back as the same tree, so
    /// what XML-DSig digests is the document and nothing else.
    static func checkCanonical(_ tree: XMLElement) -> String? {
        for mode in [XMLCanonicalization.inclusive, .exclusive] {
            let octets: [UInt8]
            do throws(XMLCanonicalError) {
                octets = try XMLCanonicalizer.canonicalize(tree, mode: mode)
            } catch {
                return tree.hasProcessingInstruction ? nil : "\(mode) canonicalisation refused a tree without a processing instruction: \(error)"
            }
            let roomy = XMLLimits(maxBytes: .max, maxDepth: XMLLimits().maxDepth, maxAttributes: 3 * XMLLimits().maxAttributes + 1)
            do throws(XMLError) {
                if try XMLReader.parse(octets, limits: roomy) != tree { return "the \(mode) canonical form reads back differently" }
            } catch {
                return "the \(mode) canonical form does not parse (\(error))"
            }
        }
        return nil
    }
}
