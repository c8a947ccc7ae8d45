using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Observability;
using Microsoft.Extensions.Options;

namespace LlmServer.OpenAi.Generation;

/// <summary>An engine event for one of the n choices of a request.</summary>
public readonly record struct ChoiceEvent(int Index, GenerationEvent Event);

/// <summary>
/// Between the API and the engine: finds the model a request names and runs its n choices as
/// separate engine requests, merged into one stream in the order events arrive.
/// </summary>
public sealed class GenerationService(IEngineClient engine, IOptions<ServerOptions> options)
{
    private readonly bool _useModelDefaults = options.Value.GenerationConfig != ServerOptions.NeutralGenerationConfig;

    public IEngineClient Engine => engine;

    /// <summary>
    /// What a sampling parameter a request leaves out becomes on <paramref name="model"/>: its
    /// generation_config.json's value (<c>--generation-config auto</c>), or the neutral one under
    /// <c>--generation-config vllm</c>, as vLLM's flag of that name does.
    /// </summary>
    public GenerationDefaults SamplingDefaults(ServedModel model) => _useModelDefaults ? model.GenerationDefaults : GenerationDefaults.None;

    /// <summary>
    /// The served model a request means, aliases followed (no name means the default one); 503
    /// while loading, 404 for a name we do not serve. The request is then bound to that model's
    /// weights, so a swap after this point does not change what answers it.
    /// </summary>
    public ServedModel ResolveModel(string? requested)
    {
        if (!engine.Ready.IsCompletedSuccessfully)
        {
            throw ApiException.NotReady();
        }
        return engine.Models.Resolve(requested) ?? throw ApiException.ModelNotFound(requested ?? "");
    }

    /// <summary>
    /// Holds room in the engine's bounded queue for all choices of one API request, or refuses
    /// the request with a 429 before anything is written.
    /// </summary>
    /// <remarks>
    /// Retry-After is one second: a slot frees whenever any request finishes, which under load
    /// is many times a second, and the official SDKs back off further on each 429 by themselves.
    /// </remarks>
    public EngineAdmission Admit(int choices)
    {
        if (choices > engine.AdmissionLimit)
        {
            // Retrying could never help: say so instead of answering 429 forever.
            throw ApiException.InvalidParameter("n",
                $"The request needs {choices} generations (prompts x n) but the server holds at most {engine.AdmissionLimit} at once.");
        }
        return engine.TryAdmit(choices) ?? throw ApiException.Overloaded(retryAfterSeconds: 1);
    }

    /// <summary>
    /// The choices of one API request: prompt index p with n samples gives choices p*n .. p*n+n-1.
    /// Each choice draws from its own seeded stream, so a seeded request with n &gt; 1 is
    /// reproducible and still gives n different samples.
    /// </summary>
    public static IReadOnlyList<EngineSubmission> PlanChoices(string requestId, ServedModel model,
        IReadOnlyList<(IReadOnlyList<int> PromptTokenIds, SamplingParameters Sampling)> prompts, int n)
    {
        var choices = new List<EngineSubmission>(prompts.Count * n);
        for (int p = 0; p < prompts.Count; p++)
        {
            for (int i = 0; i < n; i++)
            {
                int index = p * n + i;
                SamplingParameters sampling = prompts[p].Sampling;
                SamplingParameters choiceSampling = sampling.Seed is long seed ? sampling with { Seed = seed + i } : sampling;
                choices.Add(new EngineSubmission(choices.Count == 0 && prompts.Count * n == 1 ? requestId : $"{requestId}-{index}",
                    prompts[p].PromptTokenIds, choiceSampling, model.WeightsId));
            }
        }
        return choices;
    }

    /// <summary>Runs the choices to the end for a non-streamed response; a failed choice fails the request.</summary>
    public async Task<ChoiceAccumulator[]> CollectAsync(IReadOnlyList<EngineSubmission> choices, CancellationToken cancellationToken)
    {
        var accumulators = choices.Select(_ => new ChoiceAccumulator()).ToArray();
        await foreach (ChoiceEvent item in GenerateAsync(choices, cancellationToken))
        {
            if (ChoiceAccumulator.IsFailure(item.Event))
            {
                throw ChoiceAccumulator.Failure(item.Event);
            }
            accumulators[item.Index].Add(item.Event);
        }
        return accumulators;
    }

    private static void RecordPhases(ActivityContext parent, ChoiceEvent item)
    {
        if (item.Event.Timings is { } timings)
        {
            ServerTelemetry.RecordEnginePhases(parent, timings, item.Event.RequestId, item.Index);
        }
    }

    /// <summary>Runs the choices (index = position in the list) and merges their events as they arrive.</summary>
    /// <remarks>Each choice's engine phases become child spans of the span current when this is called (the HTTP request's).</remarks>
    public async IAsyncEnumerable<ChoiceEvent> GenerateAsync(IReadOnlyList<EngineSubmission> choices,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ActivityContext parent = Activity.Current?.Context ?? default;
        if (choices.Count == 1)
        {
            await foreach (GenerationEvent generated in engine.GenerateAsync(choices[0], cancellationToken))
            {
                RecordPhases(parent, new ChoiceEvent(0, generated));
                yield return new ChoiceEvent(0, generated);
            }
            yield break;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var merged = Channel.CreateUnbounded<ChoiceEvent>(new UnboundedChannelOptions { SingleReader = true });
        Task[] readers = choices.Select((submission, index) => Task.Run(async () =>
        {
            await foreach (GenerationEvent generated in engine.GenerateAsync(submission, stop.Token))
            {
                await merged.Writer.WriteAsync(new ChoiceEvent(index, generated), stop.Token);
            }
        }, stop.Token)).ToArray();
        _ = Task.WhenAll(readers).ContinueWith(t => merged.Writer.TryComplete(t.Exception), TaskScheduler.Default);

        try
        {
            await foreach (ChoiceEvent item in merged.Reader.ReadAllAsync(cancellationToken))
            {
                RecordPhases(parent, item);
                yield return item;
            }
        }
        finally
        {
            // Leaving early (client gone, error) cancels the choices still running.
            await stop.CancelAsync();
        }
    }
}
