using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;
using OpenAI.FineTuning;

namespace LlmServer.Tests.FineTuning;

/// <summary>Raw HTTP calls a fine-tuning test makes, with the admin key for admin routes and the inference key for chat.</summary>
public sealed class AdminClient(RunningServer server, string adminKey, string inferenceKey)
{
    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, object? body = null, bool inference = false)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", inference ? inferenceKey : adminKey);
        if (body is not null)
        {
            request.Content = body is string json ? new StringContent(json, Encoding.UTF8, "application/json") : JsonContent.Create(body);
        }
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public async Task<JsonElement> GetAsync(string path)
    {
        (HttpStatusCode status, JsonElement body) = await SendAsync(HttpMethod.Get, path);
        Assert.True(status == HttpStatusCode.OK, $"GET {path}: {(int)status} {body}");
        return body;
    }

    public async Task<string> UploadAsync(string content, string filename)
    {
        (HttpStatusCode status, string body) = await AuthorizedRequests.UploadAsync(server.Http, content, filename, adminKey);
        Assert.True(status == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    public async Task<JsonElement> CreateJobAsync(string json)
    {
        (HttpStatusCode status, JsonElement job) = await SendAsync(HttpMethod.Post, "/v1/fine_tuning/jobs", json);
        Assert.True(status == HttpStatusCode.OK, job.ToString());
        return job;
    }

    /// <summary>Polls the job until its status is one of <paramref name="statuses"/> (failing fast on an unexpected end).</summary>
    public async Task<JsonElement> WaitForJobAsync(string id, TimeSpan timeout, params string[] statuses)
    {
        JsonElement job = default;
        string status = "";
        await Poll.UntilAsync(async () =>
        {
            job = await GetAsync($"/v1/fine_tuning/jobs/{id}");
            status = job.GetProperty("status").GetString()!;
            if (statuses.Contains(status))
            {
                return true;
            }
            Assert.False(status is "succeeded" or "failed" or "cancelled", $"job {id} ended {status}: {job}");
            return false;
        }, timeout, $"job {id} to be {string.Join(" or ", statuses)}", () => $"still {status}");
        return job;
    }

#pragma warning disable OPENAI001 // the SDK marks its fine-tuning client experimental
    /// <summary>Polls a job the official SDK started until it ends (succeeded, failed or cancelled); returns its last state.</summary>
    public static async Task<FineTuningJob> WaitForSdkJobAsync(FineTuningClient fineTuning, FineTuningJob job, TimeSpan timeout)
    {
        await Poll.UntilAsync(async () =>
        {
            if (job.Status == FineTuningStatus.Succeeded || job.Status == FineTuningStatus.Failed || job.Status == FineTuningStatus.Cancelled)
            {
                return true;
            }
            job = await fineTuning.GetJobAsync(job.JobId);
            return false;
        }, timeout, "the job to end", () => $"still {job.Status}");
        return job;
    }
#pragma warning restore OPENAI001

    /// <summary>Every event of a job, newest first, following has_more page by page.</summary>
    public async Task<List<JsonElement>> AllEventsAsync(string jobId)
    {
        var events = new List<JsonElement>();
        string? after = null;
        while (true)
        {
            JsonElement page = await GetAsync($"/v1/fine_tuning/jobs/{jobId}/events?limit=100" + (after is null ? "" : $"&after={after}"));
            events.AddRange(page.GetProperty("data").EnumerateArray());
            if (!page.GetProperty("has_more").GetBoolean())
            {
                return events;
            }
            after = events[^1].GetProperty("id").GetString();
        }
    }

    /// <summary>A greedy chat answer: its text, and the fingerprint of the weights that wrote it.</summary>
    public async Task<(string Content, string Fingerprint)> ChatAsync(string? model, string message, int maxTokens = 12)
    {
        (HttpStatusCode status, JsonElement body) = await SendAsync(HttpMethod.Post, "/v1/chat/completions",
            new { model, messages = new[] { new { role = "user", content = message } }, temperature = 0, max_tokens = maxTokens }, inference: true);
        Assert.True(status == HttpStatusCode.OK, $"chat: {(int)status} {body}");
        return (body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!,
            body.GetProperty("system_fingerprint").GetString()!);
    }

    /// <summary>The share of held-out prompts answered exactly right, and a few of the wrong answers to show.</summary>
    public async Task<(double Accuracy, string Wrong)> AccuracyAsync(string? model, IReadOnlyList<(string Prompt, string Answer)> heldOut)
    {
        int right = 0;
        var wrong = new List<string>();
        foreach ((string prompt, string answer) in heldOut)
        {
            string content = (await ChatAsync(model, prompt)).Content;
            if (content.Trim() == answer)
            {
                right++;
            }
            else if (wrong.Count < 3)
            {
                wrong.Add($"'{prompt}' -> '{content}' (want '{answer}')");
            }
        }
        return ((double)right / heldOut.Count, string.Join("; ", wrong));
    }
}
