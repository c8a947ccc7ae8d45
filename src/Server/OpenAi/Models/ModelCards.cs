using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;

namespace LlmServer.OpenAi.Models;

/// <summary>What /v1/models (and, with paths, /admin/models) shows for the served catalog.</summary>
public static class ModelCards
{
    public const string Owner = "llmserver";

    /// <param name="samplingDefaults">What a request's unset sampling parameters become on a model; the card shows them when given.</param>
    public static ModelCard For(ServedModel model, Func<ServedModel, GenerationDefaults>? samplingDefaults = null) =>
        new(model.Name, model.LoadedAt.ToUnixTimeSeconds(), Owner, model.MaxModelLen, model.Name, model.Parent)
        {
            DefaultSamplingParams = samplingDefaults is null ? null : DefaultSamplingParams.From(samplingDefaults(model)),
        };

    /// <summary>The card with the directory the weights came from, for the admin API.</summary>
    public static ModelCard WithPath(ModelCard card, ServedModel model) => card with { Path = model.Directory };

    /// <summary>
    /// Every name a request may use: each alias (showing the model it points at), then each model
    /// by its own name unless an alias has taken that name over.
    /// </summary>
    /// <param name="withPaths">For the admin API: each card says which directory its weights came from.</param>
    /// <param name="samplingDefaults">What a request's unset sampling parameters become on a model; the cards show them when given.</param>
    public static IReadOnlyList<ModelCard> ForCatalog(ServedModelCatalog catalog, bool withPaths = false,
        Func<ServedModel, GenerationDefaults>? samplingDefaults = null)
    {
        var cards = new List<ModelCard>();
        foreach ((string alias, string target) in catalog.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (catalog.Find(target) is { } model)
            {
                ModelCard card = For(model, samplingDefaults) with { Id = alias, AliasOf = target };
                cards.Add(withPaths ? WithPath(card, model) : card);
            }
        }
        cards.AddRange(catalog.Models.Where(m => !catalog.Aliases.ContainsKey(m.Name)).Select(m => withPaths ? WithPath(For(m, samplingDefaults), m) : For(m, samplingDefaults)));
        return cards;
    }

    /// <summary>The card for one name, as a request would resolve it.</summary>
    public static ModelCard? ForName(ServedModelCatalog catalog, string name, Func<ServedModel, GenerationDefaults>? samplingDefaults = null)
    {
        if (catalog.Resolve(name) is not { } model)
        {
            return null;
        }
        ModelCard card = For(model, samplingDefaults);
        return catalog.Aliases.TryGetValue(name, out string? target) ? card with { Id = name, AliasOf = target } : card;
    }
}
