using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// <c>bench weight-forms</c> as an operator runs it: the CLI measures each form's limits in-process and
/// serves the fixture model once per form from its own child server, then prints and writes the rows.
/// </summary>
public sealed class WeightFormsBenchTests
{
    [Fact]
    public async Task Each_form_is_served_and_measured_side_by_side_in_one_run()
    {
        string resultPath = Path.Combine(Path.GetTempPath(), $"weight-forms-{Guid.NewGuid():N}.json");
        try
        {
            (int exitCode, string output) = await LlmServerProcess.RunAsync(TimeSpan.FromMinutes(4),
                "bench", "weight-forms", "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--port", FreePort().ToString(),
                "--single-stream-prompts", "2", "--throughput-prompts", "4", "--concurrency", "4", "--input-len", "16", "--output-len", "8",
                "--result-json", resultPath);

            Assert.True(exitCode == 0, output);
            using JsonDocument result = JsonDocument.Parse(await File.ReadAllTextAsync(resultPath));
            JsonElement[] forms = result.RootElement.GetProperty("forms").EnumerateArray().ToArray();
            Assert.Equal(["float32", "bfloat16", "int8"], forms.Select(f => f.GetProperty("weights").GetString()));
            long[] bytes = forms.Select(f => f.GetProperty("weight_bytes_per_token").GetInt64()).ToArray();
            // Each reduced form reads fewer bytes per token: the projections shrink, the embeddings stay float32.
            Assert.True(bytes[0] > bytes[1] && bytes[1] > bytes[2], $"bytes per token {string.Join(", ", bytes)}");
            foreach (JsonElement form in forms)
            {
                Assert.Equal(0, form.GetProperty("failed").GetInt32());
                Assert.True(form.GetProperty("single_stream_output_tokens_per_second").GetDouble() > 0);
                Assert.True(form.GetProperty("throughput_output_tokens_per_second").GetDouble() > 0);
                Assert.True(form.GetProperty("tpot_over_read_floor").GetDouble() > 0);
                Assert.True(form.GetProperty("throughput_over_roof").GetDouble() > 0);
                Assert.True(form.GetProperty("resident_bytes_after").GetInt64() > 0);
            }
            Assert.Contains("Weight forms side by side", output);
            Assert.Matches(@"\| int8 \| 3,\d{3},\d{3} \|", output);
        }
        finally
        {
            File.Delete(resultPath);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
