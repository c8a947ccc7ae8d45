using System.Text.RegularExpressions;

namespace LlmServer.Tests.Architecture;

/// <summary>
/// Which namespaces of a set of C# files use which, read from the source text: <c>using</c>
/// directives (plain, static and aliases), fully qualified names (<c>LlmServer.X.Type</c>), and
/// the types of an enclosing namespace, which C# lets a file use without any directive. Only
/// namespaces that the files declare are nodes; everything else (other projects, the framework)
/// is left out.
/// </summary>
internal sealed partial class NamespaceGraph
{
    private readonly Dictionary<string, SortedSet<string>> _edges = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _types = new(StringComparer.Ordinal);

    private NamespaceGraph()
    {
    }

    public IReadOnlyCollection<string> Namespaces => _edges.Keys;

    public IReadOnlySet<string> DependenciesOf(string ns) => _edges.TryGetValue(ns, out SortedSet<string>? targets) ? targets : new SortedSet<string>();

    /// <param name="files">Each file's text; a file without a namespace declaration (Program.cs) is left out.</param>
    public static NamespaceGraph Parse(IEnumerable<string> files)
    {
        var parsed = files.Select(text => Code(text)).Select(code => (Namespace: NamespaceDeclaration().Match(code), Code: code))
            .Where(file => file.Namespace.Success)
            .Select(file => (Namespace: file.Namespace.Groups[1].Value, file.Code))
            .ToList();
        var graph = new NamespaceGraph();
        foreach ((string ns, string code) in parsed)
        {
            graph._edges.TryAdd(ns, new SortedSet<string>(StringComparer.Ordinal));
            graph._types.TryAdd(ns, new HashSet<string>(StringComparer.Ordinal));
            graph._types[ns].UnionWith(TopLevelType().Matches(code).Select(m => m.Groups[1].Value));
        }
        foreach ((string ns, string code) in parsed)
        {
            var targets = new HashSet<string>(StringComparer.Ordinal);
            foreach (Match name in QualifiedName().Matches(code))
            {
                // using LlmServer.X;  using static LlmServer.X.Type;  using Alias = LlmServer.X.Type;  LlmServer.X.Type in code
                if (graph.NamespaceNamedBy(name.Value) is { } target)
                {
                    targets.Add(target);
                }
            }
            foreach (Match name in PartlyQualifiedName().Matches(code))
            {
                // Host.ServerOptions inside namespace LlmServer.X: C# looks the first part up in LlmServer.
                if (graph.NamespaceNamedBy("LlmServer." + name.Value) is { } target)
                {
                    targets.Add(target);
                }
            }
            var identifiers = Identifier().Matches(code).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
            foreach (string enclosing in EnclosingNamespaces(ns))
            {
                if (graph._types.TryGetValue(enclosing, out HashSet<string>? types) && types.Overlaps(identifiers))
                {
                    targets.Add(enclosing);
                }
            }
            targets.Remove(ns);
            graph._edges[ns].UnionWith(targets);
        }
        return graph;
    }

    /// <summary>A cycle as the namespaces along it, the first repeated at the end; null when there is none.</summary>
    public IReadOnlyList<string>? FindCycle()
    {
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false: on the current path; true: done
        var path = new List<string>();
        foreach (string start in _edges.Keys.Order(StringComparer.Ordinal))
        {
            if (Visit(start) is { } cycle)
            {
                return cycle;
            }
        }
        return null;

        List<string>? Visit(string ns)
        {
            if (state.TryGetValue(ns, out bool done))
            {
                return done ? null : [.. path.Skip(path.IndexOf(ns)), ns];
            }
            state[ns] = false;
            path.Add(ns);
            foreach (string target in DependenciesOf(ns))
            {
                if (Visit(target) is { } cycle)
                {
                    return cycle;
                }
            }
            path.RemoveAt(path.Count - 1);
            state[ns] = true;
            return null;
        }
    }

    /// <summary>
    /// The declared namespace a qualified name points into: the name itself, or the namespace it
    /// names a type of (LlmServer.Inference.Engine is no use of LlmServer, which has no type Inference).
    /// </summary>
    private string? NamespaceNamedBy(string qualifiedName)
    {
        string[] parts = qualifiedName.Split('.');
        for (int length = parts.Length; length > 0; length--)
        {
            string candidate = string.Join('.', parts[..length]);
            if (_edges.ContainsKey(candidate) && (length == parts.Length || _types[candidate].Contains(parts[length])))
            {
                return candidate;
            }
        }
        return null;
    }

    private static IEnumerable<string> EnclosingNamespaces(string ns)
    {
        for (int dot = ns.LastIndexOf('.'); dot > 0; dot = ns.LastIndexOf('.', dot - 1))
        {
            yield return ns[..dot];
        }
    }

    /// <summary>The text without comments and string literals, whose words name nothing the code uses.</summary>
    private static string Code(string text) => StringLiteral().Replace(Comment().Replace(text, " "), "\"\"");

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comment();

    [GeneratedRegex("\"\"\"[\\s\\S]*?\"\"\"|@\"(?:[^\"]|\"\")*\"|\\$?\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])'")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    /// <summary>Declared at the start of a line (file-scoped namespaces): a type of the namespace, not a nested one.</summary>
    [GeneratedRegex(@"^(?:\[[^\n]*\]\s*)*(?:(?:public|internal|static|sealed|abstract|partial|readonly|file)\s+)*(?:class|struct|interface|enum|record(?:\s+struct|\s+class)?)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    [GeneratedRegex(@"(?<![\w.])LlmServer(?:\.\w+)+")]
    private static partial Regex QualifiedName();

    [GeneratedRegex(@"(?<![\w.])[A-Z]\w*(?:\.\w+)+")]
    private static partial Regex PartlyQualifiedName();

    [GeneratedRegex(@"\b[A-Z]\w*\b")]
    private static partial Regex Identifier();
}
