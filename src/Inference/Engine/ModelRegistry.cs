using System.Text.Json;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The served models and aliases, owned by the engine thread. Every change happens between two
/// steps and ends by publishing a new <see cref="ServedModelCatalog"/>; requests already admitted
/// hold their weights, so they finish on what they started with while new ones see the change.
/// All models share the engine's KV cache, so they must share its shape (layers, heads, width,
/// vocabulary); adapters share their base model's weights outright.
/// </summary>
internal sealed class ModelRegistry
{
    private readonly Dictionary<string, LoadedWeights> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<int, LoadedWeights> _live = [];
    private readonly Dictionary<string, string> _aliases = new(StringComparer.Ordinal);
    private readonly string _defaultName;
    private readonly ModelShape _shape;
    private readonly ScalarType _dtype;
    private readonly WeightFormat _weights;
    private readonly Device _device;
    private readonly int _maxModelLen;
    private int _nextWeightsId = 1;

    public ModelRegistry(string defaultName, ModelShape shape, ScalarType dtype, WeightFormat weights, Device device, int maxModelLen)
    {
        _defaultName = defaultName;
        _shape = shape;
        _dtype = dtype;
        _weights = weights;
        _device = device;
        _maxModelLen = maxModelLen;
    }

    // Written on the engine thread, read by request threads: a reference swap, never a half-built catalog.
    private volatile ServedModelCatalog _catalog = ServedModelCatalog.Empty;

    public ServedModelCatalog Catalog => _catalog;

    /// <summary>Serves an already loaded full model under <paramref name="name"/> (the model given at start).</summary>
    public ServedModel AddFull(string name, string directory, ServingCheckpoint checkpoint, DateTimeOffset loadedAt)
    {
        LoadedWeights weights = FullWeights(name, directory, checkpoint, loadedAt, forAlias: false);
        Register(name, weights);
        Publish();
        return weights.Served;
    }

    /// <summary>
    /// Loads a Hugging Face model directory or a PEFT LoRA adapter directory and serves it under
    /// <paramref name="name"/>. A model already served under that name is replaced: its requests in
    /// flight finish on it and it is freed after them.
    /// </summary>
    /// <param name="baseName">For an adapter: the model it sits on; by default the one its adapter_config.json names.</param>
    public ServedModel Load(string name, string path, string? baseName = null, bool forAlias = false)
    {
        CheckName(name, "name");
        if (_aliases.ContainsKey(name))
        {
            throw new ModelAdministrationException(ModelAdministrationError.Conflict,
                $"'{name}' is an alias; point it at the new model with /admin/aliases, or remove the alias first.", "name");
        }
        string directory = Path.GetFullPath(path);
        if (!Directory.Exists(directory))
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid, $"'{path}' is not a directory on the server.", "path");
        }
        LoadedWeights weights;
        try
        {
            weights = PeftAdapterFiles.IsAdapterDirectory(directory)
                ? LoadAdapter(name, directory, baseName, forAlias)
                : LoadFull(name, directory, forAlias);
        }
        catch (Exception e) when (e is CheckpointFormatException or InvalidDataException or ArgumentException or IOException or JsonException)
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid, e.Message, "path");
        }
        Register(name, weights);
        Publish();
        return weights.Served;
    }

    /// <summary>Stops serving a model; it is freed once its requests in flight are done.</summary>
    public void Unload(string name)
    {
        if (!_byName.TryGetValue(name, out LoadedWeights? weights))
        {
            throw _aliases.ContainsKey(name)
                ? new ModelAdministrationException(ModelAdministrationError.Invalid,
                    $"'{name}' is an alias, not a model; remove it with DELETE /admin/aliases/{name}.", "model")
                : new ModelAdministrationException(ModelAdministrationError.NotFound, $"The model '{name}' is not loaded.", "model");
        }
        string[] pointing = _aliases.Where(a => a.Value == name).Select(a => a.Key).Order(StringComparer.Ordinal).ToArray();
        if (pointing.Length > 0)
        {
            throw new ModelAdministrationException(ModelAdministrationError.Conflict,
                $"The alias{(pointing.Length > 1 ? "es" : "")} {string.Join(", ", pointing)} point{(pointing.Length > 1 ? "" : "s")} at '{name}'; point {(pointing.Length > 1 ? "them" : "it")} elsewhere first.", "model");
        }
        if (name == _defaultName)
        {
            throw new ModelAdministrationException(ModelAdministrationError.Conflict,
                $"'{name}' answers requests that name no model; point the alias '{name}' at another model first.", "model");
        }
        string[] adapters = _byName.Values.Where(w => w.Base == weights).Select(w => w.Served.Name).Order(StringComparer.Ordinal).ToArray();
        if (adapters.Length > 0)
        {
            throw new ModelAdministrationException(ModelAdministrationError.Conflict,
                $"The adapter{(adapters.Length > 1 ? "s" : "")} {string.Join(", ", adapters)} run{(adapters.Length > 1 ? "" : "s")} on '{name}'; unload {(adapters.Length > 1 ? "them" : "it")} first.", "model");
        }
        _byName.Remove(name);
        weights.Retire();
        Publish();
    }

    /// <summary>
    /// Points <paramref name="alias"/> at a served model (an alias may take a model's own name,
    /// the way the default name is moved to a fine-tune). Pointing a model's name back at itself
    /// removes the alias. A model loaded only for the alias is freed once nothing points at it.
    /// </summary>
    /// <param name="loadFrom">Where to load <paramref name="target"/> from if it is not loaded yet (a checkpoint).</param>
    public ServedModel SetAlias(string alias, string target, string? loadFrom = null)
    {
        CheckName(alias, "alias");
        // A name pointed at itself means the model of that name again, not what the alias points at.
        string resolved = target == alias ? target : _aliases.GetValueOrDefault(target) ?? target;
        if (!_byName.ContainsKey(resolved))
        {
            if (loadFrom is null)
            {
                throw new ModelAdministrationException(ModelAdministrationError.NotFound, $"The model '{target}' is not loaded.", "model");
            }
            Load(resolved, loadFrom, forAlias: true);
        }
        _aliases.TryGetValue(alias, out string? previous);
        if (resolved == alias)
        {
            _aliases.Remove(alias);
        }
        else
        {
            _aliases[alias] = resolved;
        }
        RetireIfOrphaned(previous);
        Publish();
        return _byName[resolved].Served;
    }

    public void RemoveAlias(string alias)
    {
        if (!_aliases.Remove(alias, out string? previous))
        {
            throw new ModelAdministrationException(ModelAdministrationError.NotFound, $"There is no alias '{alias}'.", "alias");
        }
        RetireIfOrphaned(previous);
        Publish();
    }

    /// <summary>Binds a use (a request, a training run) to weights resolved earlier; null if they are gone.</summary>
    public LoadedWeights? Acquire(int weightsId)
    {
        if (!_live.TryGetValue(weightsId, out LoadedWeights? weights) || weights.Disposed)
        {
            return null;
        }
        weights.Acquire();
        return weights;
    }

    /// <summary>The weights a running request was bound to: it holds them, so they are still live.</summary>
    public LoadedWeights Live(int weightsId) => _live[weightsId];

    public void Release(LoadedWeights weights)
    {
        weights.Release();
        if (weights.Disposed)
        {
            Prune();
        }
    }

    /// <summary>The full model a name means, acquired for a training run (release it when done).</summary>
    public LoadedWeights AcquireFullModel(string name)
    {
        ServedModel served = Catalog.Resolve(name)
            ?? throw new ModelAdministrationException(ModelAdministrationError.NotFound, $"The model '{name}' is not loaded.", "model");
        LoadedWeights weights = _live[served.WeightsId];
        if (weights.Adapter is not null)
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid,
                $"'{name}' is a LoRA adapter; fine-tune its base model '{served.Parent}' instead.", "model");
        }
        weights.Acquire();
        return weights;
    }

    /// <summary>Frees everything at shutdown, whoever still holds it.</summary>
    public void DisposeAll()
    {
        foreach (LoadedWeights weights in _live.Values.Where(w => w.Adapter is not null && !w.Disposed))
        {
            weights.Adapter!.Dispose();
        }
        foreach (LoadedWeights weights in _live.Values.Where(w => w.Adapter is null && !w.Disposed))
        {
            weights.Model.Dispose();
        }
        _live.Clear();
        _byName.Clear();
    }

    private LoadedWeights LoadFull(string name, string directory, bool forAlias)
    {
        ServingCheckpoint checkpoint = EngineLoader.LoadCheckpoint(directory, _dtype, _device, _weights, shape => CheckSharesTheEngine(directory, shape));
        return FullWeights(name, directory, checkpoint, DateTimeOffset.UtcNow, forAlias);
    }

    private LoadedWeights FullWeights(string name, string directory, ServingCheckpoint checkpoint, DateTimeOffset loadedAt, bool forAlias)
    {
        ModelShape shape = checkpoint.Model.Shape;
        var served = new ServedModel(name, directory, shape, checkpoint.Tokenizer, checkpoint.ChatFormatter, Math.Min(_maxModelLen, shape.MaxPositions),
            loadedAt)
        {
            WeightsId = _nextWeightsId++,
            AdaptableLayers = checkpoint.Model.AdaptableLayers,
            GenerationDefaults = checkpoint.GenerationDefaults,
        };
        return new LoadedWeights(served, checkpoint.Model, adapter: null, baseWeights: null) { LoadedForAlias = forAlias };
    }

    private void CheckSharesTheEngine(string directory, ModelShape shape)
    {
        if (!shape.CanShareEngineWith(_shape))
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid,
                $"{directory} is {shape.Describe()}; models served together share one KV cache and one logits width, " +
                $"so their layers, KV heads, head size and vocabulary must match the served {_shape.Describe()}.", "path");
        }
    }

    private LoadedWeights LoadAdapter(string name, string directory, string? baseName, bool forAlias)
    {
        LoadedWeights baseWeights = baseName is not null
            ? FullModelNamed(baseName)
            : FullModelAt(PeftAdapterFiles.BaseModelNameOrPath(directory), directory);
        LoraAdapter adapter = PeftAdapterFiles.Load(directory, baseWeights.Model);
        ServedModel parent = baseWeights.Served;
        var served = new ServedModel(name, directory, parent.Shape, parent.Tokenizer, parent.ChatFormatter, parent.MaxModelLen, DateTimeOffset.UtcNow)
        {
            WeightsId = _nextWeightsId++,
            Kind = ServedModelKind.Adapter,
            Parent = parent.Name,
            AdaptableLayers = parent.AdaptableLayers,
            GenerationDefaults = parent.GenerationDefaults,
        };
        return new LoadedWeights(served, baseWeights.Model, adapter, baseWeights) { LoadedForAlias = forAlias };
    }

    private LoadedWeights FullModelNamed(string name)
    {
        ServedModel? served = Catalog.Resolve(name);
        if (served is null || !_live.TryGetValue(served.WeightsId, out LoadedWeights? weights))
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid, $"The base model '{name}' is not loaded.", "base");
        }
        if (weights.Adapter is not null)
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid, $"'{name}' is itself an adapter; an adapter needs a full model as its base.", "base");
        }
        return weights;
    }

    /// <summary>The full model an adapter was trained on, by served name or by directory.</summary>
    private LoadedWeights FullModelAt(string? nameOrPath, string adapterDirectory)
    {
        if (string.IsNullOrEmpty(nameOrPath))
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid,
                $"{adapterDirectory}/adapter_config.json names no base_model_name_or_path; name the base model with \"base\".", "base");
        }
        if (Catalog.Resolve(nameOrPath) is { Kind: ServedModelKind.Full } byName)
        {
            return _live[byName.WeightsId];
        }
        string fullPath = Path.GetFullPath(nameOrPath, adapterDirectory);
        LoadedWeights? byDirectory = _byName.Values.FirstOrDefault(w => w.Adapter is null
            && string.Equals(Path.TrimEndingDirectorySeparator(w.Served.Directory), Path.TrimEndingDirectorySeparator(fullPath), StringComparison.Ordinal));
        return byDirectory ?? throw new ModelAdministrationException(ModelAdministrationError.Invalid,
            $"The adapter was trained on '{nameOrPath}', which is not loaded; load it first or name the base model with \"base\".", "base");
    }

    private void Register(string name, LoadedWeights weights)
    {
        if (_byName.Remove(name, out LoadedWeights? replaced))
        {
            replaced.Retire();
        }
        _byName[name] = weights;
        _live[weights.Id] = weights;
    }

    private void RetireIfOrphaned(string? name)
    {
        if (name is not null && _byName.TryGetValue(name, out LoadedWeights? weights) && weights.LoadedForAlias
            && !_aliases.ContainsValue(name) && !_byName.Values.Any(w => w.Base == weights))
        {
            _byName.Remove(name);
            weights.Retire();
        }
    }

    private void Prune()
    {
        foreach (int id in _live.Where(pair => pair.Value.Disposed).Select(pair => pair.Key).ToList())
        {
            _live.Remove(id);
        }
    }

    private void Publish()
    {
        Prune();
        _catalog = new ServedModelCatalog(_byName.Values.Select(w => w.Served), new Dictionary<string, string>(_aliases, StringComparer.Ordinal), _defaultName);
    }

    private static void CheckName(string name, string param)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 256 || name.Any(char.IsControl) || name != name.Trim())
        {
            throw new ModelAdministrationException(ModelAdministrationError.Invalid,
                $"'{name}' is not a usable model name: it must be 1 to 256 characters, without control characters or surrounding spaces.", param);
        }
    }
}
