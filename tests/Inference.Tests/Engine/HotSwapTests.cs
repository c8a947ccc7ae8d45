using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Engine;

/// <summary>
/// Loading, unloading and aliasing models while the engine serves: each change lands between two
/// steps, requests finish on the weights they were admitted with, and nothing computed by one set
/// of weights is ever reused by another.
/// </summary>
public sealed class HotSwapTests : IAsyncLifetime, IDisposable
{
    private const string Fixture = "gpt2-random-2l-64d";
    private static readonly ReferenceCase Reference = ReferenceCase.Load(Fixture)[0];
    private readonly string _otherDirectory = Path.Combine(Path.GetTempPath(), "hotswap-" + Guid.NewGuid().ToString("N"));
    private EngineClient _engine = null!;

    public async Task InitializeAsync()
    {
        // Same shape as the fixture, different weights: it must answer differently.
        Gpt2Config shape = Gpt2Config.Load(Path.Combine(TestFixtures.ModelDirectory(Fixture), "config.json"));
        RandomCheckpoint.Create(shape, _otherDirectory, TestFixtures.ModelDirectory(Fixture), seed: 7);
        _engine = EngineFactory.Start(Fixture);
        await _engine.Ready;
    }

    public async Task DisposeAsync() => await _engine.DisposeAsync();

    public void Dispose() => Directory.Delete(_otherDirectory, recursive: true);

    private static SamplingParameters Greedy(int maxTokens) => new() { Temperature = 0, MaxTokens = maxTokens, IgnoreEos = true };

    private static async Task<(int[] Ids, GenerationEvent Final)> RunAsync(IEngineClient engine, string? model, int maxTokens = 12,
        IReadOnlyList<int>? prompt = null, string id = "r", Func<int, Task>? afterToken = null)
    {
        int? weights = model is null ? null : engine.Models.Resolve(model)!.WeightsId;
        var ids = new List<int>();
        GenerationEvent? final = null;
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(id, prompt ?? Reference.PromptIds, Greedy(maxTokens), weights)))
        {
            ids.AddRange(generated.Tokens.Select(t => t.TokenId));
            final = generated;
            if (afterToken is not null)
            {
                await afterToken(ids.Count);
            }
        }
        Assert.NotEqual(FinishReason.Error, final!.FinishReason);
        return (ids.ToArray(), final);
    }

    private Task<int[]> OtherModelAloneAsync(int maxTokens, IReadOnlyList<int>? prompt = null) =>
        AloneAsync(_otherDirectory, maxTokens, prompt);

    /// <summary>What a model answers when it is the only one an engine serves.</summary>
    private static async Task<int[]> AloneAsync(string directory, int maxTokens, IReadOnlyList<int>? prompt = null)
    {
        await using EngineClient alone = EngineFactory.StartFromDirectory(directory);
        await alone.Ready;
        return (await RunAsync(alone, null, maxTokens, prompt)).Ids;
    }

    [Fact]
    public async Task A_loaded_model_answers_by_its_name_beside_the_default_one()
    {
        ServedModel other = await _engine.LoadModelAsync("other", _otherDirectory);

        Assert.Equal(["gpt2-random-2l-64d", "other"], _engine.Models.Models.Select(m => m.Name));
        Assert.NotEqual(_engine.Models.Resolve(null)!.WeightsId, other.WeightsId);
        Assert.Equal(Reference.GreedyIds[..12], (await RunAsync(_engine, null)).Ids);
        int[] expected = await OtherModelAloneAsync(12);
        Assert.NotEqual(Reference.GreedyIds[..12], expected);
        Assert.Equal(expected, (await RunAsync(_engine, "other")).Ids);
    }

    [Fact]
    public async Task Requests_for_different_models_share_steps_and_each_gets_its_own_answer()
    {
        await _engine.LoadModelAsync("other", _otherDirectory);
        int[] expected = await OtherModelAloneAsync(20);
        int[] fixture = await AloneAsync(TestFixtures.ModelDirectory(Fixture), 20);

        (int[] Ids, GenerationEvent Final)[] runs = await Task.WhenAll(Enumerable.Range(0, 6)
            .Select(i => RunAsync(_engine, i % 2 == 0 ? null : "other", 20, id: $"mixed-{i}")));

        for (int i = 0; i < runs.Length; i++)
        {
            Assert.Equal(i % 2 == 0 ? fixture : expected, runs[i].Ids);
        }
    }

    [Fact]
    public async Task Pointing_the_default_name_elsewhere_leaves_requests_in_flight_on_the_old_weights()
    {
        await _engine.LoadModelAsync("other", _otherDirectory);
        int[] expected = await OtherModelAloneAsync(30);
        int[] fixture = await AloneAsync(TestFixtures.ModelDirectory(Fixture), 30);
        Task? swap = null;

        // The swap lands after the request's fifth token; it must still finish on the fixture's weights.
        (int[] inFlight, _) = await RunAsync(_engine, model: "gpt2-random-2l-64d", maxTokens: 30, afterToken: count =>
        {
            if (count == 5)
            {
                swap = _engine.SetAliasAsync("gpt2-random-2l-64d", "other");
                return swap;
            }
            return Task.CompletedTask;
        });
        await swap!;

        Assert.Equal(fixture, inFlight);
        Assert.Equal("other", _engine.Models.Resolve("gpt2-random-2l-64d")!.Name);
        Assert.Equal(expected, (await RunAsync(_engine, null, 30)).Ids);
        Assert.Equal(expected, (await RunAsync(_engine, "gpt2-random-2l-64d", 30)).Ids);

        // Pointing the name back at itself removes the alias.
        await _engine.SetAliasAsync("gpt2-random-2l-64d", "gpt2-random-2l-64d");
        Assert.Empty(_engine.Models.Aliases);
        Assert.Equal(fixture, (await RunAsync(_engine, null, 30)).Ids);
    }

    [Fact]
    public async Task Replacing_a_model_under_its_name_never_reuses_the_old_weights_cached_prefix()
    {
        // Long enough for several full blocks, so the first run publishes them to the prefix cache.
        int[] prompt = Enumerable.Range(0, 6).SelectMany(_ => Reference.PromptIds).ToArray();
        await _engine.LoadModelAsync("swapped", TestFixtures.ModelDirectory(Fixture));
        (int[] before, _) = await RunAsync(_engine, "swapped", 10, prompt);
        (_, GenerationEvent again) = await RunAsync(_engine, "swapped", 10, prompt);
        Assert.True(again.CachedPromptTokenCount > 0, "the same weights reuse their cached prefix");

        await _engine.LoadModelAsync("swapped", _otherDirectory);
        (int[] after, GenerationEvent final) = await RunAsync(_engine, "swapped", 10, prompt);

        Assert.Equal(0, final.CachedPromptTokenCount);
        Assert.Equal(await OtherModelAloneAsync(10, prompt), after);
        Assert.NotEqual(before, after);
    }

    [Fact]
    public async Task An_unloaded_model_finishes_its_requests_and_then_no_longer_resolves()
    {
        ServedModel other = await _engine.LoadModelAsync("other", _otherDirectory);
        int[] expected = await OtherModelAloneAsync(30);
        Task? unload = null;

        (int[] inFlight, _) = await RunAsync(_engine, "other", 30, afterToken: count =>
        {
            if (count == 3)
            {
                unload = _engine.UnloadModelAsync("other");
                return unload;
            }
            return Task.CompletedTask;
        });
        await unload!;

        Assert.Equal(expected, inFlight);
        Assert.Null(_engine.Models.Resolve("other"));
        // A request resolved before the unload but admitted after it is refused, not run on freed weights.
        GenerationEvent refused = await _engine.GenerateAsync(new EngineSubmission("late", Reference.PromptIds, Greedy(3), other.WeightsId)).LastAsync();
        Assert.Equal(FinishReason.Error, refused.FinishReason);
        Assert.Contains("unloaded", refused.ErrorMessage);
    }

    /// <summary>A PEFT adapter for the fixture with random A and B (a fresh one has B = 0 and changes nothing).</summary>
    private string SaveRandomAdapter(string name, long seed)
    {
        string directory = Path.Combine(_otherDirectory, name);
        Gpt2Config config = Gpt2Config.Load(Path.Combine(TestFixtures.ModelDirectory(Fixture), "config.json"));
        using Gpt2Model shape = new(config, ScalarType.Float32, CPU);
        var generator = new Generator((ulong)seed);
        using LoraAdapter adapter = LoraAdapter.Create(shape.AdaptableLayers, new LoraSettings(4, 8, ["c_attn", "c_fc"]), ScalarType.Float32, CPU, generator);
        using (no_grad())
        {
            foreach (LoraLayer layer in adapter.Layers.Values)
            {
                using Tensor noise = randn(layer.B.shape, generator: generator);
                layer.B.copy_(noise).mul_(0.5);
            }
        }
        PeftAdapterFiles.Save(adapter, directory, TestFixtures.ModelDirectory(Fixture));
        return directory;
    }

    [Fact]
    public async Task Adapters_share_the_base_weights_and_a_batch_with_it_each_request_getting_its_own_answer()
    {
        ServedModel first = await _engine.LoadModelAsync("adapter-1", SaveRandomAdapter("a1", seed: 1));
        ServedModel second = await _engine.LoadModelAsync("adapter-2", SaveRandomAdapter("a2", seed: 2));
        Assert.Equal(ServedModelKind.Adapter, first.Kind);
        Assert.Equal(Fixture, first.Parent);

        // Alone, one request at a time: the answers each adapter gives.
        string?[] models = [null, "adapter-1", "adapter-2"];
        var alone = new Dictionary<string, int[]>();
        foreach (string? model in models)
        {
            alone[model ?? ""] = (await RunAsync(_engine, model, 20)).Ids;
        }
        Assert.Equal(3, alone.Values.Select(ids => string.Join(",", ids)).Distinct().Count());

        // Together, in the same steps: the same answers.
        (int[] Ids, GenerationEvent Final)[] together = await Task.WhenAll(Enumerable.Range(0, 9)
            .Select(i => RunAsync(_engine, models[i % 3], 20, id: $"together-{i}")));
        for (int i = 0; i < together.Length; i++)
        {
            Assert.Equal(alone[models[i % 3] ?? ""], together[i].Ids);
        }

        // The base cannot go while adapters run on it; the adapters can.
        await _engine.SetAliasAsync("default-moved", Fixture);
        await Assert.ThrowsAsync<ModelAdministrationException>(() => _engine.UnloadModelAsync(Fixture));
        await _engine.UnloadModelAsync("adapter-1");
        Assert.Null(_engine.Models.Resolve("adapter-1"));
        Assert.Equal(alone["adapter-2"], (await RunAsync(_engine, "adapter-2", 20)).Ids);
    }

    [Fact]
    public async Task Changes_that_would_break_serving_are_refused_and_change_nothing()
    {
        await _engine.LoadModelAsync("other", _otherDirectory);
        await _engine.SetAliasAsync("stable", "other");

        async Task<ModelAdministrationError> Refusal(Func<Task> change) =>
            (await Assert.ThrowsAsync<ModelAdministrationException>(change)).Error;

        Assert.Equal(ModelAdministrationError.Conflict, await Refusal(() => _engine.UnloadModelAsync("gpt2-random-2l-64d")));
        Assert.Equal(ModelAdministrationError.Conflict, await Refusal(() => _engine.UnloadModelAsync("other")));
        Assert.Equal(ModelAdministrationError.Conflict, await Refusal(() => _engine.LoadModelAsync("stable", _otherDirectory)));
        Assert.Equal(ModelAdministrationError.NotFound, await Refusal(() => _engine.UnloadModelAsync("missing")));
        Assert.Equal(ModelAdministrationError.NotFound, await Refusal(() => _engine.SetAliasAsync("x", "missing")));
        Assert.Equal(ModelAdministrationError.NotFound, await Refusal(() => _engine.RemoveAliasAsync("missing")));
        Assert.Equal(ModelAdministrationError.Invalid, await Refusal(() => _engine.LoadModelAsync("bad", "/no/such/directory")));
        Assert.Equal(ModelAdministrationError.Invalid, await Refusal(() => _engine.LoadModelAsync(" ", _otherDirectory)));
        // A model of another shape cannot share the KV cache.
        Assert.Equal(ModelAdministrationError.Invalid, await Refusal(() => _engine.LoadModelAsync("tiny", TestFixtures.ModelDirectory("tiny-gpt2"))));

        Assert.Equal(["gpt2-random-2l-64d", "other"], _engine.Models.Models.Select(m => m.Name));
        Assert.Equal("other", Assert.Single(_engine.Models.Aliases).Value);
        Assert.Equal(Reference.GreedyIds[..12], (await RunAsync(_engine, null)).Ids);
    }

    [Fact]
    public async Task Background_work_runs_between_steps_and_stops_within_one_slice_when_cancelled()
    {
        var work = new CountingWork(slices: int.MaxValue);
        using var cancel = new CancellationTokenSource();
        Task running = _engine.RunBackgroundAsync(access =>
        {
            work.Model = access.UseFullModel("gpt2-random-2l-64d").Served;
            return work;
        }, cancel.Token);

        // Serving goes on meanwhile, and answers exactly as before.
        Assert.Equal(Reference.GreedyIds[..12], (await RunAsync(_engine, null)).Ids);
        await Poll.UntilAsync(() => work.Slices > 10, TimeSpan.FromSeconds(30), "more than 10 background slices");
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        int slicesAtCancel = work.Slices;
        // The engine thread has gone round its loop since: a slice it still owed the work would have run.
        await RunAsync(_engine, null);
        Assert.True(work.Disposed);
        Assert.Equal(slicesAtCancel, work.Slices);
        Assert.Equal("gpt2-random-2l-64d", work.Model!.Name);
    }

    [Fact]
    public async Task Background_work_that_finishes_or_fails_completes_its_task_accordingly()
    {
        var finite = new CountingWork(slices: 5);
        await _engine.RunBackgroundAsync(_ => finite, CancellationToken.None);
        Assert.Equal(5, finite.Slices);
        Assert.True(finite.Disposed);

        var failing = new CountingWork(slices: 3, failAt: 2);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => _engine.RunBackgroundAsync(_ => failing, CancellationToken.None));
        Assert.Equal("slice 2 failed", error.Message);
        Assert.True(failing.Disposed);

        await Assert.ThrowsAsync<ModelAdministrationException>(() =>
            _engine.RunBackgroundAsync(access => { access.UseFullModel("missing"); return finite; }, CancellationToken.None));
        // The engine is unharmed by either.
        Assert.Equal(Reference.GreedyIds[..12], (await RunAsync(_engine, null)).Ids);
    }

    private sealed class CountingWork(int slices, int failAt = -1) : IEngineBackgroundWork
    {
        private volatile int _slices;
        public int Slices => _slices;
        public volatile bool Disposed;
        public ServedModel? Model { get; set; }

        public bool RunSlice()
        {
            if (_slices == failAt)
            {
                throw new InvalidOperationException($"slice {failAt} failed");
            }
            _slices++;
            Thread.Sleep(1);
            return _slices < slices;
        }

        public void Dispose() => Disposed = true;
    }
}
