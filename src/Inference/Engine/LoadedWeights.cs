using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;

namespace LlmServer.Inference.Engine;

/// <summary>
/// One set of loaded weights on the engine thread: a full model, or an adapter over a full model it
/// shares. Counted users (requests, adapters on it, training runs) keep it alive; once it can no
/// longer be named (unloaded, or replaced) it is freed as the last user lets go.
/// </summary>
internal sealed class LoadedWeights
{
    private int _users;

    public LoadedWeights(ServedModel served, ICausalLanguageModel model, LoraAdapter? adapter, LoadedWeights? baseWeights)
    {
        Served = served;
        Model = model;
        Adapter = adapter;
        Base = baseWeights;
        Base?.Acquire();
    }

    public ServedModel Served { get; }
    public int Id => Served.WeightsId;

    /// <summary>The full model a forward pass runs: this one's own, or for an adapter its base's.</summary>
    public ICausalLanguageModel Model { get; }
    public LoraAdapter? Adapter { get; }
    public LoadedWeights? Base { get; }

    /// <summary>Loaded only to be the target of an alias: freed once no alias points at it.</summary>
    public bool LoadedForAlias { get; init; }

    /// <summary>No longer reachable by name; freed when <see cref="Users"/> reaches zero.</summary>
    public bool Retired { get; private set; }
    public bool Disposed { get; private set; }
    public int Users => _users;

    public RequestWeights ForRunner => new(Model, Adapter);

    public void Acquire()
    {
        if (Disposed)
        {
            throw new InvalidOperationException($"weights {Id} ({Served.Name}) are already freed");
        }
        _users++;
    }

    /// <summary>Lets go of one use; true if that freed the weights.</summary>
    public bool Release()
    {
        if (--_users < 0)
        {
            throw new InvalidOperationException($"weights {Id} ({Served.Name}) released more often than acquired");
        }
        return FreeIfUnused();
    }

    /// <summary>Marks the weights unreachable; true if nothing used them and they were freed at once.</summary>
    public bool Retire()
    {
        Retired = true;
        return FreeIfUnused();
    }

    private bool FreeIfUnused()
    {
        if (!Retired || _users > 0 || Disposed)
        {
            return false;
        }
        Disposed = true;
        if (Adapter is not null)
        {
            Adapter.Dispose();
            Base!.Release();
        }
        else
        {
            Model.Dispose();
        }
        return true;
    }
}

/// <summary>What the model runner needs to run one request: the full model and, if any, its adapter.</summary>
public readonly record struct RequestWeights(ICausalLanguageModel Model, LoraAdapter? Adapter);
