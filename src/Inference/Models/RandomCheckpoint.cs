using LlmServer.Inference.Models.Gpt2;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// GPT-2-shaped checkpoints with random weights. They cost exactly what a trained model of the
/// same shape costs to run, so benchmarks and tests need no downloaded weights.
/// </summary>
public static class RandomCheckpoint
{
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
