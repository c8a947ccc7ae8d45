using System.Net;
using System.Text.RegularExpressions;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>The playground's files, served from the build output next to the API, on a server with both keys set.</summary>
public partial class PlaygroundRouteTests
{
    private const string Model = "gpt2-random-2l-64d";

    [Fact]
    public async Task The_pages_and_every_file_they_load_are_served_without_a_key_while_the_api_still_needs_one()
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB",
            "--api-key", "sk-test-inference", "--admin-key", "sk-test-admin"]);

        using HttpResponseMessage root = await server.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("text/html", root.Content.Headers.ContentType?.MediaType);
        string index = await root.Content.ReadAsStringAsync();
        Assert.Contains("<select id=\"model\"", index);
        Assert.Contains("href=\"/fine-tuning.html\"", index);

        using HttpResponseMessage fineTuning = await server.Http.GetAsync("/fine-tuning.html");
        Assert.Equal(HttpStatusCode.OK, fineTuning.StatusCode);
        Assert.Equal("text/html", fineTuning.Content.Headers.ContentType?.MediaType);
        string fineTuningPage = await fineTuning.Content.ReadAsStringAsync();
        Assert.Contains("<svg id=\"loss-chart\"", fineTuningPage);

        // Every script and style sheet the pages name, and every module those scripts import, must be there:
        // a renamed file would otherwise only show as a blank page in a browser.
        var pending = new Queue<string>(LocalReferences(index).Concat(LocalReferences(fineTuningPage)));
        var served = new HashSet<string>();
        while (pending.TryDequeue(out string? path))
        {
            if (!served.Add(path))
            {
                continue;
            }
            using HttpResponseMessage file = await server.Http.GetAsync(path);
            Assert.True(file.StatusCode == HttpStatusCode.OK, $"{path}: {(int)file.StatusCode}");
            string mediaType = file.Content.Headers.ContentType?.MediaType ?? "";
            if (path.EndsWith(".js", StringComparison.Ordinal))
            {
                // Browsers refuse an ES module served with any other type.
                Assert.Equal("text/javascript", mediaType);
                foreach (Match import in ModuleImport().Matches(await file.Content.ReadAsStringAsync()))
                {
                    pending.Enqueue(new Uri(new Uri(server.BaseAddress, path), import.Groups["path"].Value).AbsolutePath);
                }
            }
            else
            {
                Assert.Equal("text/css", mediaType);
            }
        }
        Assert.Contains("/js/chat.js", served);
        Assert.Contains("/js/api.js", served);
        Assert.Contains("/js/loss-chart.js", served);

        using HttpResponseMessage models = await server.Http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);
        using HttpResponseMessage unknown = await server.Http.GetAsync("/no-such-page.html");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("\"code\":\"not_found\"", await unknown.Content.ReadAsStringAsync());
    }

    private static IEnumerable<string> LocalReferences(string html) =>
        PageReference().Matches(html).Select(m => m.Groups["path"].Value)
            .Where(p => p.EndsWith(".js", StringComparison.Ordinal) || p.EndsWith(".css", StringComparison.Ordinal))
            .Select(p => p.StartsWith('/') ? p : "/" + p);

    [GeneratedRegex("""(?:src|href)="(?<path>[^"#:]+)" """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex PageReference();

    [GeneratedRegex("""from\s+'(?<path>\.[^']+)'""")]
    private static partial Regex ModuleImport();
}
