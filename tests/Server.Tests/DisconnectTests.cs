using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// A client that goes away cancels its request. Uses a generated model wide and long enough that a
/// 900-token generation takes seconds, so the request is certainly still running when the client leaves.
/// </summary>
public sealed class DisconnectTests : IAsyncLifetime
{
    private readonly string _modelDirectory = Path.Combine(Path.GetTempPath(), $"disconnect-model-{Guid.NewGuid():N}");
    private RunningServer _server = null!;

    private IEngineClient Engine => _server.Engine;

    public async Task InitializeAsync()
    {
        var config = new Gpt2Config { LayerCount = 4, EmbeddingSize = 256, HeadCount = 4, MaxPositions = 1024 };
        RandomCheckpoint.Create(config, _modelDirectory, TestFixtures.TokenizerDirectory, seed: 1);
        _server = await RunningServer.StartAsync(["--model", _modelDirectory, "--kv-cache-memory", "64MiB"]);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_modelDirectory, recursive: true);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_client_that_disconnects_cancels_its_request_and_frees_its_blocks(bool stream)
    {
        long abortedBefore = Engine.Statistics.AbortedRequests;
        string json = JsonSerializer.Serialize(new { prompt = "Hello", max_tokens = 900, ignore_eos = true, stream });
        using (var cancel = new CancellationTokenSource())
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") })
        {
            Task<HttpResponseMessage> sending = _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            await Poll.UntilAsync(() => Engine.Statistics.RunningRequests == 1 && Engine.Statistics.KvCacheUsage > 0, TimeSpan.FromSeconds(20),
                "the request to run and hold blocks", () => $"{Engine.Statistics}");
            if (stream)
            {
                using HttpResponseMessage response = await sending;
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                Assert.StartsWith("data: ", await reader.ReadLineAsync());
            }
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                using HttpResponseMessage response = await sending;
                await response.Content.ReadAsStringAsync(cancel.Token);
            });
        }

        await Poll.UntilAsync(() => Engine.Statistics is { RunningRequests: 0, WaitingRequests: 0 } s && s.FreeBlocks == s.TotalBlocks, TimeSpan.FromSeconds(20),
            "the engine to be idle with every block free", () => $"{Engine.Statistics}");
        Assert.Equal(abortedBefore + 1, Engine.Statistics.AbortedRequests);
    }
}
