using LlmServer.Contracts;
using LlmServer.Inference.Engine;

namespace LlmServer.Administration;

/// <summary>What /v1/models shows for the served catalog.</summary>
public static class ModelCards
{
    public const string Owner = "llmserver";

    public static ModelCard For(ServedModel model) =>
        new(model.Name, model.LoadedAt.ToUnixTimeSeconds(), Owner, model.MaxModelLen, model.Directory, model.Parent);

    /// <summary>
    /// Every name a request may use: each alias (showing the model it points at), then each model
    /// by its own name unless an alias has taken that name over.
    /// </summary>
    public static IReadOnlyList<ModelCard> ForCatalog(ServedModelCatalog catalog)
    {
        var cards = new List<ModelCard>();
        foreach ((string alias, string target) in catalog.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (catalog.Find(target) is { } model)
            {
                cards.Add(For(model) with { Id = alias, AliasOf = target });
            }
        }
        cards.AddRange(catalog.Models.Where(m => !catalog.Aliases.ContainsKey(m.Name)).Select(For));
        return cards;
    }

    /// <summary>The card for one name, as a request would resolve it.</summary>
    public static ModelCard? ForName(ServedModelCatalog catalog, string name)
    {
        if (catalog.Resolve(name) is not { } model)
        {
            return null;
        }
        return catalog.Aliases.TryGetValue(name, out string? target) ? For(model) with { Id = name, AliasOf = target } : For(model);
    }
}
