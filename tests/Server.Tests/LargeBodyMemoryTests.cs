using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using LlmServer.Inference.Tests;
using Xunit.Abstractions;

namespace LlmServer.Tests;

/// <summary>
/// A series of big bodies must not leave the server larger. Its own process, so that its resident
/// set is its own: before, 17 bodies of 20 MB took a server from 345 MiB to 1.55 GiB for good.
/// </summary>
public sealed class LargeBodyMemoryTests(ITestOutputHelper output)
{
    // Generous: growth was ~1.1 GiB before; ~10 MiB now.
    private const long AllowedGrowth = 150L << 20;

    [Fact]
    public async Task A_series_of_16_MB_bodies_leaves_the_resident_set_where_it_was()
    {
        int port = FreePort();
        using Process server = StartServer(port, "--max-request-body", "32MiB");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            await LlmServerProcess.WaitHealthyAsync(http, server, "/health", TimeSpan.FromMinutes(2));
            // A small request first, so that what serving any request allocates once is in the baseline.
            using (HttpResponseMessage warmUp = await PostAsync(http, "/v1/completions", "{\"prompt\":\"hello\",\"max_tokens\":2}"))
            {
                Assert.Equal(HttpStatusCode.OK, warmUp.StatusCode);
            }
            long before = ResidentBytes(server);

            // Words, one word, and CJK sent as \uXXXX escapes (the decoding that pooled body-sized arrays).
            string[] bodies =
            [
                "{\"messages\":[{\"role\":\"user\",\"content\":\"" + Repeat("lorem ipsum ", 16_000_000) + "\"}]}",
                "{\"prompt\":\"" + new string('a', 16_000_000) + "\"}",
                "{\"prompt\":\"" + Repeat("\\u4e2d\\u6587", 16_000_000) + "\"}",
            ];
            for (int i = 0; i < 8; i++)
            {
                using HttpResponseMessage response = await PostAsync(http, i % 3 == 0 ? "/v1/chat/completions" : "/v1/completions", bodies[i % 3]);
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                Assert.Contains("context_length_exceeded", await response.Content.ReadAsStringAsync());
            }

            // The memory is given back a moment after the last large body; wait for it, generously.
            long after = 0;
            await Poll.UntilAsync(() => (after = ResidentBytes(server)) <= before + AllowedGrowth, TimeSpan.FromSeconds(30),
                "the resident set to shrink back", () => $"RSS grew from {before >> 20} MiB to {after >> 20} MiB");
            output.WriteLine($"RSS before {before >> 20} MiB, after 8 bodies of 16 MB {after >> 20} MiB");
            Assert.True(after <= before + AllowedGrowth, $"RSS grew from {before >> 20} MiB to {after >> 20} MiB");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static string Repeat(string piece, int length)
    {
        var text = new StringBuilder(length + piece.Length);
        while (text.Length < length)
        {
            text.Append(piece);
        }
        return text.ToString(0, length - length % piece.Length);
    }

    private static Process StartServer(int port, params string[] flags) =>
        LlmServerProcess.Start(["serve", "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB",
            "--port", port.ToString(), .. flags]);

    /// <summary>The server's resident set, from the operating system.</summary>
    private static long ResidentBytes(Process server)
    {
        server.Refresh();
        return server.WorkingSet64;
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string path, string json) =>
        http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
