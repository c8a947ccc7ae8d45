using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// Checkpoints with random weights, of any architecture and of the published shapes. They cost
/// exactly what a trained model of the same shape costs to run, so benchmarks and tests need no
/// downloaded weights.
/// </summary>
public static class RandomCheckpoint
{
    /// <summary>The model_type values a random checkpoint can be written for.</summary>
    public static readonly string[] Architectures = ["gpt2", .. LlamaConfig.SupportedModelTypes];

    /// <summary>GPT-2's size names.</summary>
    public static readonly string[] Gpt2ShapeNames = ["124M", "355M", "774M", "1.5B"];

    /// <summary>The size names <paramref name="modelType"/> has.</summary>
    public static IReadOnlyList<string> ShapeNames(string modelType) =>
        modelType == "gpt2" ? Gpt2ShapeNames : PublishedLlamaShapes.Names(modelType);

    /// <summary>The published GPT-2 sizes, by name.</summary>
    public static Gpt2Config Shape(string name) => name switch
    {
        "124M" or "gpt2" => new Gpt2Config { LayerCount = 12, EmbeddingSize = 768, HeadCount = 12 },
        "355M" or "gpt2-medium" => new Gpt2Config { LayerCount = 24, EmbeddingSize = 1024, HeadCount = 16 },
        "774M" or "gpt2-large" => new Gpt2Config { LayerCount = 36, EmbeddingSize = 1280, HeadCount = 20 },
        "1.5B" or "gpt2-xl" => new Gpt2Config { LayerCount = 48, EmbeddingSize = 1600, HeadCount = 25 },
        _ => throw new ArgumentException($"unknown GPT-2 shape '{name}' (124M, 355M, 774M, 1.5B)"),
    };

    /// <summary>Writes a model of <paramref name="config"/>'s shape with GPT-2's initialisation to <paramref name="directory"/>.</summary>
    public static void Create(Gpt2Config config, string directory, string tokenizerDirectory, long seed = 0)
    {
        using Gpt2Model model = new(config, ScalarType.Float32, CPU);
        Initialize(model, seed);
        CheckpointWriter.Save(model, directory, tokenizerDirectory);
    }

    /// <summary>Writes a Llama-family model of <paramref name="config"/>'s shape with transformers' initialisation to <paramref name="directory"/>.</summary>
    /// <returns>The shape written, its parameter count included.</returns>
    public static ModelShape Create(LlamaConfig config, string directory, string tokenizerDirectory, long seed = 0)
    {
        config.Validate("config.json");
        using LlamaModel model = new(config, ScalarType.Float32, CPU, separateHead: !config.TieWordEmbeddings);
        Initialize(model, seed);
        CheckpointWriter.Save(model, directory, tokenizerDirectory);
        return model.Shape;
    }

    /// <summary>
    /// transformers' _init_weights for the Llama family: every linear and embedding weight
    /// ~ N(0, initializer_range = 0.02), biases zero, RMSNorm weights one.
    /// </summary>
    public static void Initialize(LlamaModel model, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor parameter) in model.named_parameters())
        {
            if (name.EndsWith("norm.weight"))
            {
                parameter.fill_(1.0);
            }
            else if (name.EndsWith(".bias"))
            {
                parameter.zero_();
            }
            else
            {
                parameter.normal_(0, 0.02, generator);
            }
        }
    }

    /// <summary>
    /// GPT-2's initialisation: weights ~ N(0, 0.02), residual projections scaled by
    /// 1/sqrt(2 * n_layer), biases zero, layer norms identity.
    /// </summary>
    public static void Initialize(Gpt2Model model, long seed)
    {
        var generator = new Generator((ulong)seed);
        double residualStd = 0.02 / Math.Sqrt(2.0 * model.Config.LayerCount);
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor parameter) in model.named_parameters())
        {
            if (name.EndsWith("ln_1.weight") || name.EndsWith("ln_2.weight") || name.EndsWith("ln_f.weight"))
            {
                parameter.fill_(1.0);
            }
            else if (name.EndsWith(".bias"))
            {
                parameter.zero_();
            }
            else
            {
                double std = name.EndsWith("c_proj.weight") ? residualStd : 0.02;
                parameter.normal_(0, std, generator);
            }
        }
    }
}
