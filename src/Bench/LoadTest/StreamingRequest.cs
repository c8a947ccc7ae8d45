using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// Sends one streaming completion request and times it the way vLLM's benchmark client does: time to the
/// first chunk with text, the gaps between later chunks with text, and the time to the end of the stream.
/// Every failure (HTTP status, error event, broken or unfinished stream, timeout) becomes a failed
/// outcome; only the run's own cancellation propagates.
/// </summary>
internal static class StreamingRequest
{
    private const string DataPrefix = "data:";
    private const string DoneMarker = "[DONE]";

    public static async Task<RequestOutcome> SendAsync(
        HttpClient client, Uri url, byte[] body, int plannedPromptTokens, TimeSpan timeout, CancellationToken runCancelled)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(runCancelled);
        deadline.CancelAfter(timeout);
        CancellationToken token = deadline.Token;
        long sent = Stopwatch.GetTimestamp();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            // ResponseHeadersRead: the body is the token stream, and each chunk must be timed as it arrives.
            using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                string errorBody = await response.Content.ReadAsStringAsync(token);
                return RequestOutcome.Failed(
                    HttpErrorMessage(response, errorBody), MillisecondsSince(sent), response.StatusCode == HttpStatusCode.TooManyRequests);
            }
            await using Stream stream = await response.Content.ReadAsStreamAsync(token);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return await ReadStreamAsync(reader, sent, plannedPromptTokens, token);
        }
        catch (OperationCanceledException) when (!runCancelled.IsCancellationRequested)
        {
            return RequestOutcome.Failed($"no complete response within {timeout.TotalSeconds:0.#} s", MillisecondsSince(sent));
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return RequestOutcome.Failed(e.Message, MillisecondsSince(sent));
        }
    }

    private static async Task<RequestOutcome> ReadStreamAsync(StreamReader reader, long sent, int plannedPromptTokens, CancellationToken token)
    {
        long? firstText = null;
        long previousText = 0;
        var gaps = new List<double>();
        int chunksWithText = 0;
        int? promptTokens = null, completionTokens = null;
        while (await reader.ReadLineAsync(token) is { } line)
        {
            // OpenAI-style servers put each event's JSON on a single data line; blank separators,
            // comments (": ping") and event: lines carry nothing the benchmark needs.
            if (!line.StartsWith(DataPrefix, StringComparison.Ordinal))
            {
                continue;
            }
            long arrived = Stopwatch.GetTimestamp();
            string data = line[DataPrefix.Length..].Trim();
            if (data == DoneMarker)
            {
                return new RequestOutcome
                {
                    TimeToFirstTokenMs = firstText is { } first ? Milliseconds(sent, first) : null,
                    InterTokenLatenciesMs = gaps,
                    LatencyMs = Milliseconds(sent, arrived),
                    PromptTokens = promptTokens ?? plannedPromptTokens,
                    // A server without usage in the stream: one token per chunk is what OpenAI-style servers send.
                    CompletionTokens = completionTokens ?? chunksWithText,
                };
            }
            StreamChunk chunk = StreamChunk.Parse(data);
            if (chunk.Error is { } error)
            {
                return RequestOutcome.Failed($"error event in stream: {error}", MillisecondsSince(sent));
            }
            // Role-only and usage-only chunks carry no text and so no token timing.
            if (!string.IsNullOrEmpty(chunk.Text))
            {
                if (firstText is null)
                {
                    firstText = arrived;
                }
                else
                {
                    gaps.Add(Milliseconds(previousText, arrived));
                }
                previousText = arrived;
                chunksWithText++;
            }
            promptTokens = chunk.PromptTokens ?? promptTokens;
            completionTokens = chunk.CompletionTokens ?? completionTokens;
        }
        return RequestOutcome.Failed($"stream ended without {DataPrefix} {DoneMarker}", MillisecondsSince(sent));
    }

    private static string HttpErrorMessage(HttpResponseMessage response, string body)
    {
        string? message = null;
        try
        {
            using JsonDocument document = JsonDocument.Parse(body);
            message = StreamChunk.ErrorMessage(document.RootElement);
        }
        catch (JsonException)
        {
        }
        message ??= string.IsNullOrWhiteSpace(body) ? response.ReasonPhrase : StreamChunk.Shorten(body.Trim());
        return $"HTTP {(int)response.StatusCode}: {message}";
    }

    private static double MillisecondsSince(long start) => Stopwatch.GetElapsedTime(start).TotalMilliseconds;

    private static double Milliseconds(long start, long end) => Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;
}
