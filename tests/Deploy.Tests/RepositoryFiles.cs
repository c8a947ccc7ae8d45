using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace LlmServer.Deploy.Tests;

/// <summary>The repository's deployment files, found from the test binaries, and YAML read as plain maps and lists.</summary>
internal static class RepositoryFiles
{
    private static readonly Lazy<string> LocatedRoot = new(() =>
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Server.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"no Server.sln in any ancestor of {AppContext.BaseDirectory}");
    });

    public static string Root => LocatedRoot.Value;

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    /// <summary>docker-compose.yml and every YAML file under deploy/, relative to the root.</summary>
    public static IReadOnlyList<string> YamlFiles() =>
        [
            "docker-compose.yml",
            .. Directory.EnumerateFiles(PathOf("deploy"), "*.*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".yaml", StringComparison.Ordinal))
                .Select(f => Path.GetRelativePath(Root, f))
                .Order(StringComparer.Ordinal),
        ];

    /// <summary>Every document of a YAML file as dictionaries, lists and strings.</summary>
    public static IReadOnlyList<object> ReadYamlDocuments(string relative)
    {
        IDeserializer deserializer = new DeserializerBuilder().Build();
        var parser = new Parser(new StringReader(Read(relative)));
        parser.Consume<StreamStart>();
        var documents = new List<object>();
        while (parser.Accept<DocumentStart>(out _))
        {
            if (deserializer.Deserialize<object>(parser) is { } document)
            {
                documents.Add(document);
            }
        }
        return documents;
    }

    public static object ReadYaml(string relative) => Assert.Single(ReadYamlDocuments(relative));

    /// <summary>The value at a path of map keys and list indexes, failing with the path when it is missing.</summary>
    public static object At(object node, params object[] path)
    {
        object current = node;
        foreach (object step in path)
        {
            current = (step, current) switch
            {
                (string key, Dictionary<object, object> map) when map.TryGetValue(key, out object? value) && value is not null => value,
                (int index, List<object> list) when index < list.Count => list[index],
                _ => throw new Xunit.Sdk.XunitException($"no '{step}' at {string.Join('.', path)}"),
            };
        }
        return current;
    }

    public static string Text(object node, params object[] path) => Assert.IsType<string>(At(node, path));
}
