using LlmServer.Inference.Models.Gpt2;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// One LoRA adapter for a GPT-2 base: a <see cref="LoraLayer"/> for every targeted Conv1D, keyed by
/// the Conv1D's module path ("h.0.attn.c_attn"). The layers are nested under modules named after the
/// path's parts, so state_dict() keys read "h.0.attn.c_attn.lora_A.weight": PEFT's saved key for a
/// GPT2LMHeadModel without its "base_model.model.transformer." prefix.
/// </summary>
public sealed class LoraAdapter : Module
{
    private readonly Dictionary<string, LoraLayer> _layers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PathNode> _nodes = new(StringComparer.Ordinal);

    /// <summary>Builds the adapter with uninitialized weights; see <see cref="Create"/> for PEFT's initialization.</summary>
    /// <exception cref="ArgumentException">The settings do not fit <paramref name="config"/>.</exception>
    public LoraAdapter(Gpt2Config config, LoraSettings settings, ScalarType dtype, Device device) : base("lora_adapter")
    {
        Settings = settings;
        // Kept as a Scalar and handed to add/index_add as alpha: no tensor per call for the scaling.
        Scale = settings.Scale;
        foreach (string path in settings.TargetedPaths(config.LayerCount))
        {
            (int inputs, int outputs) = Dimensions(config, path);
            var layer = new LoraLayer(inputs, outputs, settings.Rank, dtype, device);
            _layers.Add(path, layer);
            Attach(path, layer);
        }
    }

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
    public static LoraAdapter Create(Gpt2Config config, LoraSettings settings, ScalarType dtype, Device device, Generator? generator = null)
    {
        var adapter = new LoraAdapter(config, settings, dtype, device);
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

    /// <summary>(in, out) of the Conv1D at <paramref name="path"/>, one of <see cref="LoraSettings.ModulesInBlock"/> in a block.</summary>
    private static (int Inputs, int Outputs) Dimensions(Gpt2Config config, string path)
    {
        int c = config.EmbeddingSize, f = config.FeedForwardSize;
        string module = path.Split('.', 3)[^1];                                          // "h.0.attn.c_attn" -> "attn.c_attn"
        return module switch
        {
            "attn.c_attn" => (c, 3 * c),
            "attn.c_proj" => (c, c),
            "mlp.c_fc" => (c, f),
            "mlp.c_proj" => (f, c),
            _ => throw new ArgumentException($"'{path}' is not a GPT-2 layer LoRA can adapt", nameof(path)),
        };
    }

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
