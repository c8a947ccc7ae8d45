using System.Net;
using System.Text.Json;
using LlmServer.Inference.Tests;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace LlmServer.Playground.Tests;

[Collection(PlaygroundCollection.Name)]
public sealed class FineTuningPageTests(PlaygroundFixture server, ITestOutputHelper output)
{
    [Fact]
    public async Task The_page_lists_a_real_job_and_charts_one_point_per_metrics_event_while_it_trains()
    {
        // 16 examples in batches of 4 for 2 epochs: 8 optimizer steps, each a metrics event, plus one validation event per epoch.
        // Each step costs about a second here (the 50,257-wide output layer dominates), so this keeps the test short.
        string training = await server.UploadAsync(ChatJsonl(16, seed: 1), "train.jsonl");
        string validation = await server.UploadAsync(ChatJsonl(4, seed: 2), "valid.jsonl");
        var (status, body) = await server.AdminAsync(HttpMethod.Post, "/v1/fine_tuning/jobs", Json(new
        {
            model = PlaygroundFixture.ModelName,
            training_file = training,
            validation_file = validation,
            suffix = "playground",
            hyperparameters = new { n_epochs = 2, batch_size = 4, learning_rate_multiplier = 4 },
        }));
        Assert.True(status == HttpStatusCode.OK, $"create job: {(int)status} {body}");
        string jobId = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
        await Poll.UntilAsync(async () => (await MetricsAsync(jobId)).Train >= 2, TimeSpan.FromSeconds(30), "two metrics events");

        IPage page = await server.NewPageAsync();
        await page.GotoAsync("/fine-tuning.html");
        await page.Locator("#admin-key").FillAsync(PlaygroundFixture.AdminKey);
        await page.Locator("#load-jobs").ClickAsync();
        ILocator row = page.Locator($"#jobs tr[data-job-id='{jobId}']");
        await Assertions.Expect(row).ToContainTextAsync(PlaygroundFixture.ModelName);
        await row.Locator("button").ClickAsync();
        await Assertions.Expect(page.Locator("#job-title")).ToHaveTextAsync(jobId);

        ILocator trainLine = page.Locator("#loss-chart polyline.train-loss");
        await Assertions.Expect(trainLine).ToHaveCountAsync(1);
        var pointCounts = new List<int> { await PointCountAsync(trainLine) };
        await PlaygroundFixture.ScreenshotAsync(page, "3-fine-tuning-running");

        // The page polls while the job runs; record what it draws until the job is done.
        string finalStatus = "";
        await Poll.UntilAsync(async () =>
        {
            pointCounts.Add(await PointCountAsync(trainLine));
            finalStatus = JsonDocument.Parse((await server.AdminAsync(HttpMethod.Get, $"/v1/fine_tuning/jobs/{jobId}")).Body).RootElement
                .GetProperty("status").GetString()!;
            return finalStatus is "succeeded" or "failed" or "cancelled";
        }, TimeSpan.FromSeconds(90), "the job to finish");
        Assert.Equal("succeeded", finalStatus);

        (int train, int valid) = await MetricsAsync(jobId);
        Assert.Equal(8, train);
        Assert.Equal(2, valid);
        // The last poll after the job finished draws every event.
        await Assertions.Expect(page.Locator("#job-fields")).ToContainTextAsync("succeeded");
        await page.WaitForFunctionAsync($"() => document.querySelector('#loss-chart polyline.train-loss').points.length === {train}");
        Assert.Equal(valid, await PointCountAsync(page.Locator("#loss-chart polyline.valid-loss")));
        await Assertions.Expect(page.Locator("#job-fields")).ToContainTextAsync($"ft:{PlaygroundFixture.ModelName}:");
        await PlaygroundFixture.ScreenshotAsync(page, "4-fine-tuning-done");
        output.WriteLine($"training-loss points drawn while polling: {string.Join(", ", pointCounts.Distinct())}; metrics events: {train} training, {valid} validation");
        Assert.True(pointCounts[0] >= 2, $"the first chart had {pointCounts[0]} points");

        // The chat page's picker offers the result.
        string fineTunedModel = JsonDocument.Parse((await server.AdminAsync(HttpMethod.Get, $"/v1/fine_tuning/jobs/{jobId}")).Body).RootElement
            .GetProperty("fine_tuned_model").GetString()!;
        await page.Locator("a[href='/']").ClickAsync();
        await Assertions.Expect(page.Locator($"#model option[value='{fineTunedModel}']")).ToHaveCountAsync(1);
    }

    private static Task<int> PointCountAsync(ILocator polyline) => polyline.EvaluateAsync<int>("line => line.points.length");

    private async Task<(int Train, int Valid)> MetricsAsync(string jobId)
    {
        var (status, body) = await server.AdminAsync(HttpMethod.Get, $"/v1/fine_tuning/jobs/{jobId}/events?limit=100");
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement[] metrics = [.. JsonDocument.Parse(body).RootElement.GetProperty("data").EnumerateArray()
            .Where(e => e.GetProperty("type").GetString() == "metrics")];
        return (metrics.Count(e => e.GetProperty("data").TryGetProperty("train_loss", out _)),
            metrics.Count(e => e.GetProperty("data").TryGetProperty("valid_loss", out _)));
    }

    private static StringContent Json(object value) =>
        new(JsonSerializer.Serialize(value), System.Text.Encoding.UTF8, "application/json");

    /// <summary>Tiny chat examples: enough for a few optimizer steps; what they teach does not matter here.</summary>
    private static string ChatJsonl(int count, int seed)
    {
        var random = new Random(seed);
        string[] animals = ["cat", "dog", "cow", "duck"];
        string[] sounds = ["meow", "woof", "moo", "quack"];
        return string.Concat(Enumerable.Range(0, count).Select(_ =>
        {
            int animal = random.Next(animals.Length);
            return JsonSerializer.Serialize(new
            {
                messages = new object[]
                {
                    new { role = "user", content = $"What does the {animals[animal]} say?" },
                    new { role = "assistant", content = sounds[animal] },
                },
            }) + "\n";
        }));
    }
}
