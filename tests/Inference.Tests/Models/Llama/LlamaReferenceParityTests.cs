using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Llama;

/// <summary>
/// Our Llama-family forward (GQA, Llama 3 rope scaling, Qwen3 q/k norms, BF16 weights read as
/// float32) against an independent numpy implementation, through the training forward.
/// </summary>
public class LlamaReferenceParityTests
{
    private const double LogprobTolerance = 2e-3;

    [Theory]
    [MemberData(nameof(LlamaReferenceCase.All), MemberType = typeof(LlamaReferenceCase))]
    public void Greedy_decoding_through_the_training_forward_matches_the_reference(string model, int caseIndex)
    {
        LlamaReferenceCase reference = LlamaReferenceCase.Load(model)[caseIndex];
        using LlamaModel llama = LlamaCheckpointLoader.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        using var noGrad = torch.no_grad();

        var ids = reference.PromptIds.Select(i => (long)i).ToList();
        for (int step = 0; step < reference.GreedyIds.Length; step++)
        {
            using var scope = NewDisposeScope();
            Tensor input = tensor(ids.ToArray()).unsqueeze(0);                           // (1, T)
            Tensor logits = llama.ForwardTraining(input);                                // (1, T, V)
            Tensor logprobs = logits[0, -1].to(ScalarType.Float64).log_softmax(0);       // (V)
            (Tensor top5Values, Tensor top5Ids) = logprobs.topk(5);
            int[] top5 = top5Ids.data<long>().Select(i => (int)i).ToArray();
            int chosen = top5[0];

            Assert.Equal(reference.GreedyIds[step], chosen);
            Assert.Equal(reference.GreedyTop5Ids[step], top5);
            Assert.InRange(top5Values[0].item<double>(), reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
            ids.Add(chosen);
        }
    }

    [Theory]
    [MemberData(nameof(LlamaReferenceCase.All), MemberType = typeof(LlamaReferenceCase))]
    public void Training_forward_gives_the_reference_logits_at_the_last_prompt_position(string model, int caseIndex)
    {
        LlamaReferenceCase reference = LlamaReferenceCase.Load(model)[caseIndex];
        using LlamaModel llama = LlamaCheckpointLoader.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();

        Tensor ids = tensor(reference.PromptIds.Select(i => (long)i).ToArray()).unsqueeze(0);    // (1, T)
        Tensor last = llama.ForwardTraining(ids)[0, -1];                                          // (V)

        float[] first8 = last[..8].data<float>().ToArray();
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(reference.LastLogitsFirst8[i], first8[i], 1e-3);
        }
        Assert.Equal(reference.LastLogitsArgmax, (int)last.argmax().item<long>());
    }
}
