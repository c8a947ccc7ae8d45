using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// One LoRA adapter for a base model: a <see cref="LoraLayer"/> for every targeted layer, keyed by
/// the layer's module path ("h.0.attn.c_attn", "model.layers.0.self_attn.q_proj"). The layers are
/// nested under modules named after the path's parts, so state_dict() keys read
/// "h.0.attn.c_attn.lora_A.weight": PEFT's saved key without its "base_model.model." prefix and
/// the architecture's <see cref="AdaptableLayers.PeftNamePrefix"/>.
/// </summary>
public sealed class LoraAdapter : Module
{
    private readonly Dictionary<string, LoraLayer> _layers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PathNode> _nodes = new(StringComparer.Ordinal);

    /// <summary>Builds the adapter with uninitialized weights; see <see cref="Create"/> for PEFT's initialization.</summary>
    /// <param name="model">The base's adaptable layers (<see cref="ICausalLanguageModel.AdaptableLayers"/>).</param>
    /// <exception cref="ArgumentException">The settings do not fit <paramref name="model"/>.</exception>
    public LoraAdapter(AdaptableLayers model, LoraSettings settings, ScalarType dtype, Device device) : base("lora_adapter")
    {
        Model = model;
        Settings = settings;
        // Kept as a Scalar and handed to add/index_add as alpha: no tensor per call for the scaling.
        Scale = settings.Scale;
        foreach (AdaptableLayer target in settings.TargetedLayers(model))
        {
            var layer = new LoraLayer(target.Inputs, target.Outputs, settings.Rank, dtype, device);
            _layers.Add(target.ModulePath, layer);
            Attach(target.ModulePath, layer);
        }
    }

    /// <summary>The layers of the base this adapter was built for.</summary>
    public AdaptableLayers Model { get; }

    public LoraSettings Settings { get; }

    /// <summary>The factor each update is multiplied by (<see cref="LoraSettings.Scale"/>).</summary>
    public Scalar Scale { get; }

    /// <summary>The adapted layers by module path, in model order.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers => _layers;

    /// <summary>
    /// PEFT's initialization: A as nn.Linear's default (kaiming-uniform with a = sqrt(5), which is
    /// uniform in ±1/sqrt(in)), B zero, so a new adapter leaves the base's outputs unchanged.
    /// The same <paramref name="generator"/> state gives the same weights.
    /// </summary>
    public static LoraAdapter Create(AdaptableLayers model, LoraSettings settings, ScalarType dtype, Device device, Generator? generator = null)
    {
        var adapter = new LoraAdapter(model, settings, dtype, device);
        using var noGrad = torch.no_grad();
        foreach (LoraLayer layer in adapter._layers.Values)
        {
            double bound = 1.0 / Math.Sqrt(layer.A.shape[1]);
            layer.A.uniform_(-bound, bound, generator);
            layer.B.zero_();
        }
        return adapter;
    }

    public bool TryGetLayer(string modulePath, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out LoraLayer? layer) =>
        _layers.TryGetValue(modulePath, out layer);

    // TorchSharp refuses dots in a module name, so "h.0.attn.c_attn" becomes h -> 0 -> attn -> c_attn.
    private void Attach(string path, LoraLayer layer)
    {
        string[] parts = path.Split('.');
        Module parent = this;
        string prefix = "";
        for (int i = 0; i < parts.Length - 1; i++)
        {
            prefix = prefix.Length == 0 ? parts[i] : prefix + "." + parts[i];
            if (!_nodes.TryGetValue(prefix, out PathNode? node))
            {
                node = new PathNode();
                Register(parent, parts[i], node);
                _nodes.Add(prefix, node);
            }
            parent = node;
        }
        Register(parent, parts[^1], layer);
    }

    private static void Register(Module parent, string name, Module child)
    {
        switch (parent)
        {
            case LoraAdapter adapter:
                adapter.register_module(name, child);
                break;
            case PathNode node:
                node.Add(name, child);
                break;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Scale.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>A module with no weights of its own: one part of a dotted module path.</summary>
    private sealed class PathNode : Module
    {
        public PathNode() : base("path") { }

        public void Add(string name, Module child) => register_module(name, child);
    }
}
