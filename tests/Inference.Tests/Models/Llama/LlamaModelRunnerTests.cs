using LlmServer.Inference.Engine;
using LlmServer.Inference.KvCache;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Llama;

/// <summary>
/// Every reference case of a Llama-family fixture at once through the engine's scheduler and
/// <see cref="ModelRunner"/>: prompts chunked and batched with other requests' decodes, the prefix
/// cache on, the paged cache holding only the KV heads. Greedy tokens, logprobs and top 5 match
/// the reference for every request. (The engine's tokenizer and sampler are not involved: the
/// greedy choice and logprobs are taken from the runner's logits here.)
/// </summary>
public class LlamaModelRunnerTests
{
    private const double LogprobTolerance = 2e-3;
    private const int BlockSize = 16;

    [Theory]
    [InlineData("llama3-random-2l-64d")]
    [InlineData("qwen3-random-2l-64d")]
    public void All_cases_batched_through_the_runner_match_the_reference(string model)
    {
        IReadOnlyList<LlamaReferenceCase> cases = LlamaReferenceCase.Load(model);
        using LlamaModel llama = LlamaCheckpointLoader.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        llama.PrepareForServing();
        int blocksPerSequence = cases.Max(c => c.PromptIds.Length + c.GreedyIds.Length) / BlockSize + 1;
        int blockCount = 2 * cases.Count * blocksPerSequence;
        using var cache = new PagedKvCache(llama.Config, blockCount, BlockSize, ScalarType.Float32, CPU);
        var blocks = new KvCacheManager(new BlockPool(blockCount), BlockSize, enablePrefixCaching: true);
        // A small token budget splits the longer prompts into chunks that share steps with decodes.
        var scheduler = new Scheduler(new SchedulerOptions { MaxNumSeqs = cases.Count, MaxNumBatchedTokens = 24 }, blocks);
        using var runner = new ModelRunner(llama, cache, blocks, ownsModel: false);

        var requests = cases.Select((c, i) => new Request($"case-{i}", c.PromptIds, new SamplingParameters { MaxTokens = c.GreedyIds.Length }, i)).ToList();
        requests.ForEach(scheduler.Add);
        var byRequest = requests.Zip(cases).ToDictionary(p => p.First, p => p.Second);
        int steps = 0;
        while (requests.Any(r => r.Status != RequestStatus.Finished))
        {
            Assert.True(++steps < 500, "the requests never finished");
            SchedulerOutput output = scheduler.Schedule();
            (IReadOnlyList<Request> sampled, ReadOnlyMemory<float> logits) = runner.Execute(output);
            scheduler.CommitStep(output);
            for (int row = 0; row < sampled.Count; row++)
            {
                Request request = sampled[row];
                LlamaReferenceCase reference = byRequest[request];
                int step = request.NumOutputTokens;
                float[] rowLogits = logits.Slice(row * runner.VocabularySize, runner.VocabularySize).ToArray();
                using var scope = NewDisposeScope();
                Tensor logprobs = tensor(rowLogits).to(ScalarType.Float64).log_softmax(0);          // (V)
                (Tensor top5Values, Tensor top5Ids) = logprobs.topk(5);
                int[] top5 = top5Ids.data<long>().Select(i => (int)i).ToArray();

                Assert.Equal(reference.GreedyIds[step], top5[0]);
                Assert.Equal(reference.GreedyTop5Ids[step], top5);
                Assert.InRange(top5Values[0].item<double>(), reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
                request.AppendOutputToken(top5[0]);
                if (request.NumOutputTokens == reference.GreedyIds.Length)
                {
                    scheduler.Finish(request);
                }
            }
        }
    }
}
