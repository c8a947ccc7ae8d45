namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// Sets <see cref="GrammarNode.MinLength"/> on every node of a grammar. Recursion through <c>$ref</c> makes a node's
/// minimum depend on itself, so it is a least fixed point: every composite node starts unbounded and is recomputed
/// from its children until nothing shrinks. Each round shrinks some value or ends, and the compiler has refused
/// references that reach themselves without consuming a byte, so every node of a usable grammar ends finite.
/// </summary>
internal static class MinimumLengths
{
    public static void Compute(GrammarNode root)
    {
        var nodes = new List<GrammarNode>();
        var seen = new HashSet<GrammarNode>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<GrammarNode>([root]);
        while (pending.TryPop(out GrammarNode? node))
        {
            if (seen.Add(node))
            {
                nodes.Add(node);
                foreach (GrammarNode child in node.Children)
                {
                    pending.Push(child);
                }
            }
        }

        bool changed = true;
        while (changed)
        {
            changed = false;
            // Children were found after their parents: updating from the end settles most grammars in one round.
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                int length = nodes[i].ComputeMinLength();
                if (length < nodes[i].MinLength)
                {
                    nodes[i].MinLength = length;
                    changed = true;
                }
            }
        }
    }
}
