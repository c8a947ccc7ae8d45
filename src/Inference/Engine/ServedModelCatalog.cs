namespace LlmServer.Inference.Engine;

/// <summary>
/// An immutable view of what is served: models by name and aliases over them. The engine thread
/// publishes a new one after every load, unload or alias change; request threads read whichever is
/// current, so a name resolves either wholly before or wholly after a swap.
/// </summary>
public sealed class ServedModelCatalog
{
    public static readonly ServedModelCatalog Empty = new([], new Dictionary<string, string>(), defaultName: "");

    private readonly Dictionary<string, ServedModel> _byName;

    public ServedModelCatalog(IEnumerable<ServedModel> models, IReadOnlyDictionary<string, string> aliases, string defaultName)
    {
        _byName = models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        Aliases = aliases;
        DefaultName = defaultName;
    }

    /// <summary>Every loaded model, by its own name, in load order.</summary>
    public IEnumerable<ServedModel> Models => _byName.Values.OrderBy(m => m.WeightsId);

    /// <summary>Alias → the model name it points at.</summary>
    public IReadOnlyDictionary<string, string> Aliases { get; }

    /// <summary>The name a request without "model" is served under (itself possibly an alias).</summary>
    public string DefaultName { get; }

    /// <summary>
    /// The model a request's "model" means: an alias first (so an alias may take over a model's own
    /// name, the way the default name is pointed at a fine-tune), then a model's own name.
    /// </summary>
    public ServedModel? Resolve(string? name)
    {
        string wanted = string.IsNullOrEmpty(name) ? DefaultName : name;
        if (Aliases.TryGetValue(wanted, out string? target))
        {
            wanted = target;
        }
        return _byName.GetValueOrDefault(wanted);
    }

    /// <summary>A model by its own name, ignoring aliases.</summary>
    public ServedModel? Find(string name) => _byName.GetValueOrDefault(name);
}
