using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using LlmServer.Inference.Tests.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// Every architecture against an independent numpy implementation of it (GPT-2; Llama 3 with GQA
/// and rope scaling; Qwen3 with q/k norms; BF16 weights read as float32), through the engine and
/// through the training forward.
/// </summary>
public class ReferenceParityTests
{
    private const double LogprobTolerance = 2e-3;

    [Theory]
    [MemberData(nameof(ReferenceCase.All), MemberType = typeof(ReferenceCase))]
    public async Task Greedy_generation_through_the_engine_matches_the_reference(string model, int caseIndex)
    {
        ReferenceCase reference = ReferenceCase.Load(model)[caseIndex];
        await using var engine = EngineFactory.Start(model);

        (List<GeneratedToken> tokens, string text) = await GenerateGreedy(engine, "parity", reference);

        AssertMatches(reference, tokens);
        Assert.Equal(reference.GreedyText, text);
    }

    /// <summary>
    /// All cases of a model at once: a small token budget splits the longer prompts into chunks that
    /// share steps with other requests' decodes, and the prefix cache is on.
    /// </summary>
    [Theory]
    [MemberData(nameof(ReferenceCase.Models), MemberType = typeof(ReferenceCase))]
    public async Task Every_case_batched_together_through_the_engine_matches_the_reference(string model)
    {
        IReadOnlyList<ReferenceCase> cases = ReferenceCase.Load(model);
        await using var engine = EngineFactory.Start(model, scheduler: new SchedulerOptions { MaxNumSeqs = cases.Count, MaxNumBatchedTokens = 24 });

        var results = await Task.WhenAll(cases.Select((reference, i) => GenerateGreedy(engine, $"case-{i}", reference)));

        foreach ((ReferenceCase reference, (List<GeneratedToken> tokens, string text)) in cases.Zip(results))
        {
            AssertMatches(reference, tokens);
            Assert.Equal(reference.GreedyText, text);
        }
    }

    [Theory]
    [MemberData(nameof(ReferenceCase.All), MemberType = typeof(ReferenceCase))]
    public void Training_forward_gives_the_reference_logits_at_the_last_prompt_position(string model, int caseIndex)
    {
        ReferenceCase reference = ReferenceCase.Load(model)[caseIndex];
        using ICausalLanguageModel network = ModelArchitectures.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();

        Tensor ids = tensor(reference.PromptIds.Select(i => (long)i).ToArray()).unsqueeze(0);    // (1, T)
        Tensor logits = network.ForwardTraining(ids);                                            // (1, T, V)
        Tensor last = logits[0, -1];                                                              // (V)

        float[] first8 = last[..8].data<float>().ToArray();
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(reference.LastLogitsFirst8[i], first8[i], 1e-3);
        }
        Assert.Equal(reference.LastLogitsArgmax, (int)last.argmax().item<long>());
    }

    [Theory]
    [MemberData(nameof(ReferenceCase.All), MemberType = typeof(ReferenceCase))]
    public void Greedy_decoding_through_the_training_forward_matches_the_reference(string model, int caseIndex)
    {
        ReferenceCase reference = ReferenceCase.Load(model)[caseIndex];
        using ICausalLanguageModel network = ModelArchitectures.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        using var noGrad = torch.no_grad();

        var ids = reference.PromptIds.Select(i => (long)i).ToList();
        for (int step = 0; step < reference.GreedyIds.Length; step++)
        {
            using var scope = NewDisposeScope();
            Tensor input = tensor(ids.ToArray()).unsqueeze(0);                           // (1, T)
            Tensor logits = network.ForwardTraining(input);                              // (1, T, V)
            Tensor logprobs = logits[0, -1].to(ScalarType.Float64).log_softmax(0);       // (V)
            (Tensor top5Values, Tensor top5Ids) = logprobs.topk(5);
            int[] top5 = top5Ids.data<long>().Select(i => (int)i).ToArray();

            Assert.Equal(reference.GreedyIds[step], top5[0]);
            Assert.Equal(reference.GreedyTop5Ids[step], top5);
            Assert.InRange(top5Values[0].item<double>(), reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
            ids.Add(top5[0]);
        }
    }

    private static async Task<(List<GeneratedToken> Tokens, string Text)> GenerateGreedy(EngineClient engine, string id, ReferenceCase reference)
    {
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = reference.GreedyIds.Length, IgnoreEos = true, Logprobs = 5 };
        var tokens = new List<GeneratedToken>();
        string text = "";
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(id, reference.PromptIds, sampling)))
        {
            Assert.Null(generated.ErrorMessage);
            tokens.AddRange(generated.Tokens);
            text += generated.TextDelta;
        }
        return (tokens, text);
    }

    private static void AssertMatches(ReferenceCase reference, List<GeneratedToken> tokens)
    {
        Assert.Equal(reference.GreedyIds, tokens.Select(t => t.TokenId));
        for (int step = 0; step < tokens.Count; step++)
        {
            Assert.InRange((double)tokens[step].Logprob!.Value, reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
            Assert.Equal(reference.GreedyTop5Ids[step], tokens[step].TopLogprobs!.Select(t => t.TokenId));
        }
    }
}
