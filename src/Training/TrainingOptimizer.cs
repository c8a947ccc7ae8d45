using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training;

/// <summary>The AdamW every trainer here uses.</summary>
internal static class TrainingOptimizer
{
    /// <summary>AdamW's moments and step counts, saved in each checkpoint for a resume.</summary>
    public const string StateFileName = "optimizer.bin";

    /// <summary>As transformers' Trainer and nanoGPT: weight decay on matrices, not on biases and layer norm gains.</summary>
    public static AdamW Create(IReadOnlyList<Parameter> parameters, double learningRate, double weightDecay)
    {
        var decayed = parameters.Where(p => p.dim() >= 2).ToList();
        var undecayed = parameters.Where(p => p.dim() < 2).ToList();
        var groups = new List<AdamW.ParamGroup>
        {
            new(decayed, new AdamW.Options { LearningRate = learningRate, weight_decay = weightDecay }),
        };
        if (undecayed.Count > 0)
        {
            groups.Add(new AdamW.ParamGroup(undecayed, new AdamW.Options { LearningRate = learningRate, weight_decay = 0 }));
        }
        return optim.AdamW(groups, learningRate, weight_decay: weightDecay);
    }

    public static void SetLearningRate(AdamW optimizer, double learningRate)
    {
        foreach (var group in optimizer.ParamGroups)
        {
            group.LearningRate = learningRate;
        }
    }
}
