namespace LlmServer.Playground.Tests;

/// <summary>One server and one browser for every playground test; the tests run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class PlaygroundCollection : ICollectionFixture<PlaygroundFixture>
{
    public const string Name = "playground";
}
