using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Tests.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>Our GPT-2 against an independent numpy implementation, through both forward paths.</summary>
public class ReferenceParityTests
{
    private const double LogprobTolerance = 2e-3;

    [Theory]
    [MemberData(nameof(ReferenceCase.All), MemberType = typeof(ReferenceCase))]
    public async Task Greedy_generation_through_the_engine_matches_the_reference(string model, int caseIndex)
    {
        ReferenceCase reference = ReferenceCase.Load(model)[caseIndex];
        await using var engine = EngineFactory.Start(model);

        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = reference.GreedyIds.Length, IgnoreEos = true, Logprobs = 5 };
        var tokens = new List<GeneratedToken>();
        string text = "";
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission("parity", reference.PromptIds, sampling)))
        {
            tokens.AddRange(generated.Tokens);
            text += generated.TextDelta;
            Assert.Null(generated.ErrorMessage);
        }

        Assert.Equal(reference.GreedyIds, tokens.Select(t => t.TokenId));
        Assert.Equal(reference.GreedyText, text);
        for (int step = 0; step < tokens.Count; step++)
        {
            Assert.InRange((double)tokens[step].Logprob!.Value, reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
            Assert.Equal(reference.GreedyTop5Ids[step], tokens[step].TopLogprobs!.Select(t => t.TokenId));
        }
    }

    [Theory]
    [MemberData(nameof(ReferenceCase.All), MemberType = typeof(ReferenceCase))]
    public void Training_forward_gives_the_reference_logits_at_the_last_prompt_position(string model, int caseIndex)
    {
        ReferenceCase reference = ReferenceCase.Load(model)[caseIndex];
        using Gpt2Model gpt = CheckpointLoader.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();

        Tensor ids = tensor(reference.PromptIds.Select(i => (long)i).ToArray()).unsqueeze(0);    // (1, T)
        Tensor logits = gpt.ForwardTraining(ids);                                                // (1, T, V)
        Tensor last = logits[0, -1];                                                              // (V)

        float[] first8 = last[..8].data<float>().ToArray();
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(reference.LastLogitsFirst8[i], first8[i], 1e-3);
        }
        Assert.Equal(reference.LastLogitsArgmax, (int)last.argmax().item<long>());
    }
}
