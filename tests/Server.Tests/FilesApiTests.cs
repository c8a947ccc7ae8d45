using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;
using OpenAI;
using OpenAI.Files;

namespace LlmServer.Tests;

/// <summary>OpenAI's Files API against a real server with an admin key and its own data directory.</summary>
public sealed class FilesApiTests : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference";
    private const string ChatExamples =
        """
        {"messages":[{"role":"user","content":"What is 2 + 2?"},{"role":"assistant","content":"4"}]}
        {"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}

        """;

    private readonly TemporaryDataDirectory _data = new("files");

    public void Dispose() => _data.Dispose();

    private Task<RunningServer> StartAsync(params string[] moreFlags) =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB",
            "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path, "--max-upload-size", "4KiB", .. moreFlags]);

    [Fact]
    public async Task A_file_is_uploaded_listed_read_and_deleted_in_OpenAIs_shapes()
    {
        await using RunningServer server = await StartAsync();

        (HttpStatusCode status, JsonElement file) = await UploadAsync(server, ChatExamples, "train.jsonl");
        Assert.Equal(HttpStatusCode.OK, status);
        string id = file.GetProperty("id").GetString()!;
        Assert.StartsWith("file-", id);
        Assert.Equal("file", file.GetProperty("object").GetString());
        Assert.Equal(Encoding.UTF8.GetByteCount(ChatExamples), file.GetProperty("bytes").GetInt64());
        Assert.Equal("train.jsonl", file.GetProperty("filename").GetString());
        Assert.Equal("fine-tune", file.GetProperty("purpose").GetString());

        JsonElement list = await GetJsonAsync(server, "/v1/files");
        Assert.Equal("list", list.GetProperty("object").GetString());
        Assert.Equal([id], list.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()));
        Assert.Equal(id, (await GetJsonAsync(server, $"/v1/files/{id}")).GetProperty("id").GetString());
        Assert.Equal(ChatExamples, await SendAsync(server, HttpMethod.Get, $"/v1/files/{id}/content", AdminKey).ContinueWith(t => t.Result.Body));

        (HttpStatusCode deleteStatus, string deleted) = await SendAsync(server, HttpMethod.Delete, $"/v1/files/{id}", AdminKey);
        Assert.Equal(HttpStatusCode.OK, deleteStatus);
        Assert.True(JsonDocument.Parse(deleted).RootElement.GetProperty("deleted").GetBoolean());
        (HttpStatusCode gone, string goneBody) = await SendAsync(server, HttpMethod.Get, $"/v1/files/{id}", AdminKey);
        Assert.Equal(HttpStatusCode.NotFound, gone);
        Assert.Equal($"No such File object: {id}", JsonDocument.Parse(goneBody).RootElement.GetProperty("error").GetProperty("message").GetString());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_data.Path, "files")));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("10001")]
    public async Task A_bad_list_limit_gets_OpenAIs_error_naming_it(string limit)
    {
        await using RunningServer server = await StartAsync();

        (HttpStatusCode status, string body) = await SendAsync(server, HttpMethod.Get, $"/v1/files?limit={limit}", AdminKey);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("limit", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task A_bad_file_is_refused_with_its_line_numbers_and_nothing_is_kept()
    {
        await using RunningServer server = await StartAsync();
        string bad = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n{not json\n{\"prompt\":\"a\"}\n";

        (HttpStatusCode status, JsonElement body) = await UploadAsync(server, bad, "bad.jsonl");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        JsonElement error = body.GetProperty("error");
        Assert.Equal("invalid_file", error.GetProperty("code").GetString());
        Assert.Contains("line 2", error.GetProperty("message").GetString());
        Assert.Empty((await GetJsonAsync(server, "/v1/files")).GetProperty("data").EnumerateArray());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_data.Path, "files")));
    }

    [Fact]
    public async Task A_file_over_the_size_limit_gets_413_and_leaves_nothing_behind()
    {
        await using RunningServer server = await StartAsync();
        string line = "{\"prompt\":\"" + new string('x', 200) + "\",\"completion\":\"y\"}\n";

        (HttpStatusCode status, JsonElement body) = await UploadAsync(server, string.Concat(Enumerable.Repeat(line, 40)), "big.jsonl");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("file_too_large", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_data.Path, "files")));
    }

    [Fact]
    public async Task An_upload_cut_before_its_closing_boundary_is_a_400_and_nothing_is_kept()
    {
        await using RunningServer server = await StartAsync();
        // A client that stopped mid-upload: the body ends inside the file part, with no closing --boundary--.
        string body = "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n" +
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
            ChatExamples[..40];
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=XyZ");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/files") { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);

        using HttpResponseMessage response = await server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("file", error.GetProperty("param").GetString());
        Assert.Equal("incomplete_upload", error.GetProperty("code").GetString());
        Assert.Empty((await GetJsonAsync(server, "/v1/files")).GetProperty("data").EnumerateArray());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_data.Path, "files")));
    }

    [Fact]
    public async Task An_upload_that_is_not_multipart_gets_415_in_OpenAIs_shape()
    {
        await using RunningServer server = await StartAsync();

        (HttpStatusCode status, string body) = await AuthorizedRequests.SendAsync(server.Http, HttpMethod.Post, "/v1/files", AdminKey, "{\"purpose\":\"fine-tune\"}");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        JsonElement error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal("Content-Type must be multipart/form-data, not 'application/json; charset=utf-8'.", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task File_content_is_served_as_JSON_as_OpenAIs_spec_says()
    {
        await using RunningServer server = await StartAsync();
        string id = (await UploadAsync(server, ChatExamples, "train.jsonl")).Body.GetProperty("id").GetString()!;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{id}/content");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);

        using HttpResponseMessage response = await server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(ChatExamples, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_upload_larger_than_the_request_body_limit_is_still_taken_up_to_the_upload_limit()
    {
        // --max-request-body bounds JSON bodies; /v1/files has --max-upload-size instead.
        await using RunningServer server = await StartAsync("--max-request-body", "1KiB");
        string examples = string.Concat(Enumerable.Repeat(ChatExamples, 10));
        Assert.InRange(Encoding.UTF8.GetByteCount(examples), 2048, 4096);

        (HttpStatusCode status, JsonElement file) = await UploadAsync(server, examples, "train.jsonl");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(Encoding.UTF8.GetByteCount(examples), file.GetProperty("bytes").GetInt64());
    }

    [Fact]
    public async Task Files_need_the_admin_key_not_the_inference_key()
    {
        await using RunningServer server = await StartAsync();

        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(server, HttpMethod.Get, "/v1/files", InferenceKey)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(server, HttpMethod.Get, "/v1/files", key: null)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await UploadAsync(server, ChatExamples, "train.jsonl", InferenceKey)).Status);
    }

    [Fact]
    public async Task Files_are_listed_again_after_a_restart()
    {
        string id;
        await using (RunningServer first = await StartAsync())
        {
            id = (await UploadAsync(first, ChatExamples, "train.jsonl")).Body.GetProperty("id").GetString()!;
        }

        await using RunningServer second = await StartAsync();
        Assert.Equal([id], (await GetJsonAsync(second, "/v1/files")).GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()));
        Assert.Equal(ChatExamples, (await SendAsync(second, HttpMethod.Get, $"/v1/files/{id}/content", AdminKey)).Body);
    }

    [Fact]
    public async Task The_OpenAI_SDKs_file_client_uploads_and_lists()
    {
        await using RunningServer server = await StartAsync();
        OpenAIFileClient files = new OpenAIClient(new ApiKeyCredential(AdminKey), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") })
            .GetOpenAIFileClient();

        using var content = new MemoryStream(Encoding.UTF8.GetBytes(ChatExamples));
        OpenAIFile uploaded = await files.UploadFileAsync(content, "sdk.jsonl", FileUploadPurpose.FineTune);

        Assert.StartsWith("file-", uploaded.Id);
        Assert.Equal("sdk.jsonl", uploaded.Filename);
        OpenAIFileCollection listed = await files.GetFilesAsync();
        Assert.Contains(listed, f => f.Id == uploaded.Id);
        BinaryData downloaded = await files.DownloadFileAsync(uploaded.Id);
        Assert.Equal(ChatExamples, downloaded.ToString());
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> UploadAsync(RunningServer server, string content, string filename, string key = AdminKey)
    {
        (HttpStatusCode status, string body) = await AuthorizedRequests.UploadAsync(server.Http, content, filename, key);
        return (status, JsonDocument.Parse(body).RootElement);
    }

    private static async Task<JsonElement> GetJsonAsync(RunningServer server, string path)
    {
        (HttpStatusCode status, string body) = await SendAsync(server, HttpMethod.Get, path, AdminKey);
        Assert.Equal(HttpStatusCode.OK, status);
        return JsonDocument.Parse(body).RootElement;
    }

    private static Task<(HttpStatusCode Status, string Body)> SendAsync(RunningServer server, HttpMethod method, string path, string? key) =>
        AuthorizedRequests.SendAsync(server.Http, method, path, key);
}
