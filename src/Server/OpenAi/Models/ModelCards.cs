using LlmServer.Inference.Engine;

namespace LlmServer.OpenAi.Models;

/// <summary>What /v1/models (and, with paths, /admin/models) shows for the served catalog.</summary>
public static class ModelCards
{
    public const string Owner = "llmserver";

    public static ModelCard For(ServedModel model) =>
        new(model.Name, model.LoadedAt.ToUnixTimeSeconds(), Owner, model.MaxModelLen, model.Name, model.Parent);

    /// <summary>The card with the directory the weights came from, for the admin API.</summary>
    public static ModelCard WithPath(ModelCard card, ServedModel model) => card with { Path = model.Directory };

    /// <summary>
    /// Every name a request may use: each alias (showing the model it points at), then each model
    /// by its own name unless an alias has taken that name over.
    /// </summary>
    /// <param name="withPaths">For the admin API: each card says which directory its weights came from.</param>
    public static IReadOnlyList<ModelCard> ForCatalog(ServedModelCatalog catalog, bool withPaths = false)
    {
        var cards = new List<ModelCard>();
        foreach ((string alias, string target) in catalog.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (catalog.Find(target) is { } model)
            {
                ModelCard card = For(model) with { Id = alias, AliasOf = target };
                cards.Add(withPaths ? WithPath(card, model) : card);
            }
        }
        cards.AddRange(catalog.Models.Where(m => !catalog.Aliases.ContainsKey(m.Name)).Select(m => withPaths ? WithPath(For(m), m) : For(m)));
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
