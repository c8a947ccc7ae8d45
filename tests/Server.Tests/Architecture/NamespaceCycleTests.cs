namespace LlmServer.Tests.Architecture;

/// <summary>
/// src/Server is grouped by feature, and the features must stay layered: shared OpenAI types and
/// the host's options at the bottom, features above them, the composition root (ServerApplication)
/// on top. A namespace that uses one that uses it back is a cycle, and the layers are gone.
/// </summary>
public sealed class NamespaceCycleTests
{
    [Fact]
    public void No_namespace_of_the_server_uses_one_that_uses_it_back()
    {
        NamespaceGraph graph = NamespaceGraph.Parse(ServerSources().Select(File.ReadAllText));

        // The parser must see the tree, or an empty graph would pass.
        Assert.Contains("LlmServer", graph.Namespaces);
        Assert.Contains("LlmServer.OpenAi", graph.DependenciesOf("LlmServer.Host.Drain"));
        IReadOnlyList<string>? cycle = graph.FindCycle();
        Assert.True(cycle is null, $"namespace cycle in src/Server: {string.Join(" -> ", cycle ?? [])}\n{Describe(graph)}");
    }

    [Fact]
    public void A_cycle_through_a_using_and_a_type_of_the_enclosing_namespace_is_found()
    {
        // LlmServer.A uses LlmServer.A.B by a using; LlmServer.A.B uses LlmServer.A's type without one.
        NamespaceGraph graph = NamespaceGraph.Parse([
            """
            using LlmServer.A.B;
            namespace LlmServer.A;
            public sealed class Shared { public Feature? Part { get; init; } }
            """,
            """
            namespace LlmServer.A.B;
            public sealed class Feature { public Shared? Owner { get; init; } }
            """,
        ]);

        Assert.Equal(["LlmServer.A", "LlmServer.A.B", "LlmServer.A"], graph.FindCycle());
    }

    [Fact]
    public void Qualified_names_count_and_comments_and_strings_do_not()
    {
        NamespaceGraph graph = NamespaceGraph.Parse([
            """
            namespace LlmServer.A;
            public static class First { public static object Make() => new LlmServer.B.Second(); }
            """,
            """
            namespace LlmServer.B;
            // LlmServer.A.First would make a cycle, if a comment counted.
            public sealed class Second { public string Name => "LlmServer.A.First"; }
            """,
        ]);

        Assert.Equal(["LlmServer.B"], graph.DependenciesOf("LlmServer.A").ToArray());
        Assert.Empty(graph.DependenciesOf("LlmServer.B"));
        Assert.Null(graph.FindCycle());
    }

    private static IEnumerable<string> ServerSources()
    {
        string server = Path.Combine(RepositoryRoot(), "src", "Server");
        string bin = Path.DirectorySeparatorChar + "bin" + Path.DirectorySeparatorChar, obj = Path.DirectorySeparatorChar + "obj" + Path.DirectorySeparatorChar;
        return Directory.EnumerateFiles(server, "*.cs", SearchOption.AllDirectories)
            .Where(path => !path[server.Length..].Contains(bin, StringComparison.Ordinal) && !path[server.Length..].Contains(obj, StringComparison.Ordinal));
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Server.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"no Server.sln in any ancestor of {AppContext.BaseDirectory}");
    }

    private static string Describe(NamespaceGraph graph) =>
        string.Join("\n", graph.Namespaces.Order(StringComparer.Ordinal).Select(ns => $"  {ns} -> {string.Join(", ", graph.DependenciesOf(ns))}"));
}
