using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;
using LlmServer.Storage;
using OpenAI;
using OpenAI.Files;
using OpenAI.FineTuning;
using JobSignals = LlmServer.FineTuning.JobSignals;

namespace LlmServer.Tests;

/// <summary>
/// OpenAI's fine-tuning jobs API against a real server with an admin key and its own data
/// directory. No worker trains here, so jobs stay where the API leaves them.
/// </summary>
public sealed class FineTuningJobsApiTests : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference", Model = "gpt2-random-2l-64d";
    private const string ChatExamples =
        """
        {"messages":[{"role":"user","content":"What is 2 + 2?"},{"role":"assistant","content":"4"}]}
        {"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}

        """;

    private readonly TemporaryDataDirectory _data = new("jobs");

    public void Dispose() => _data.Dispose();

    private Task<RunningServer> StartAsync() =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB",
            "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path, "--organization", "test-org", "--no-training"]);

    [Fact]
    public async Task A_job_is_created_and_read_back_in_OpenAIs_shape_with_LoRA_inside_the_hyperparameters()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);

        (HttpStatusCode status, JsonElement job) = await PostAsync(server, "/v1/fine_tuning/jobs", Json("""
            {"model":"MODEL","training_file":"FILE","suffix":"support-bot","seed":42,"metadata":{"team":"search"},
             "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":2,"learning_rate_multiplier":0.5}}}}
            """, file));

        Assert.Equal(HttpStatusCode.OK, status);
        string id = job.GetProperty("id").GetString()!;
        Assert.Matches("^ftjob-[A-Za-z0-9]{24}$", id);
        Assert.Equal("fine_tuning.job", job.GetProperty("object").GetString());
        Assert.Equal(Model, job.GetProperty("model").GetString());
        Assert.Equal("validating_files", job.GetProperty("status").GetString());
        Assert.Equal(file, job.GetProperty("training_file").GetString());
        Assert.Equal("test-org", job.GetProperty("organization_id").GetString());
        Assert.Equal(42, job.GetProperty("seed").GetInt32());
        Assert.Equal("support-bot", job.GetProperty("user_provided_suffix").GetString());
        Assert.Equal("search", job.GetProperty("metadata").GetProperty("team").GetString());
        Assert.Empty(job.GetProperty("result_files").EnumerateArray());
        // Required by OpenAI's schema even while they have no value.
        foreach (string field in new[] { "error", "fine_tuned_model", "finished_at", "trained_tokens", "validation_file", "estimated_finish", "integrations" })
        {
            Assert.Equal(JsonValueKind.Null, job.GetProperty(field).ValueKind);
        }
        AssertHyperparameters(job.GetProperty("hyperparameters"), """
            {"n_epochs":2,"batch_size":"auto","learning_rate_multiplier":0.5,"lora_rank":8,"lora_alpha":16,"lora_target_modules":["c_attn","c_proj","c_fc"]}
            """);
        Assert.Equal("supervised", job.GetProperty("method").GetProperty("type").GetString());
        AssertHyperparameters(job.GetProperty("method").GetProperty("supervised").GetProperty("hyperparameters"),
            job.GetProperty("hyperparameters").GetRawText());

        JsonElement read = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}");
        Assert.Equal(job.GetRawText(), read.GetRawText());
    }

    [Fact]
    public async Task Top_level_hyperparameters_are_taken_too_and_must_agree_with_the_methods()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);

        (HttpStatusCode status, JsonElement job) = await PostAsync(server, "/v1/fine_tuning/jobs", Json("""
            {"model":"MODEL","training_file":"FILE","validation_file":"FILE",
             "hyperparameters":{"batch_size":4,"n_epochs":"auto","lora_rank":0}}
            """, file));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(file, job.GetProperty("validation_file").GetString());
        AssertHyperparameters(job.GetProperty("hyperparameters"), """
            {"n_epochs":"auto","batch_size":4,"learning_rate_multiplier":"auto","lora_rank":0,"lora_alpha":0,"lora_target_modules":[]}
            """);

        (status, job) = await PostAsync(server, "/v1/fine_tuning/jobs", Json("""
            {"model":"MODEL","training_file":"FILE","hyperparameters":{"n_epochs":3,"lora_rank":4},
             "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":3,"lora_alpha":8,"lora_target_modules":["attn.c_proj","c_attn"]}}}}
            """, file));
        Assert.Equal(HttpStatusCode.OK, status);
        AssertHyperparameters(job.GetProperty("method").GetProperty("supervised").GetProperty("hyperparameters"), """
            {"n_epochs":3,"batch_size":"auto","learning_rate_multiplier":"auto","lora_rank":4,"lora_alpha":8,"lora_target_modules":["attn.c_proj","c_attn"]}
            """);

        (status, JsonElement conflict) = await PostAsync(server, "/v1/fine_tuning/jobs", Json("""
            {"model":"MODEL","training_file":"FILE","hyperparameters":{"n_epochs":3},
             "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":2}}}}
            """, file));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("method.supervised.hyperparameters.n_epochs", conflict.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Jobs_list_newest_first_in_pages()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);
        string[] ids = new string[3];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = (await CreateAsync(server, file)).GetProperty("id").GetString()!;
        }

        JsonElement first = await GetJsonAsync(server, "/v1/fine_tuning/jobs?limit=2");
        Assert.Equal("list", first.GetProperty("object").GetString());
        Assert.Equal([ids[2], ids[1]], Ids(first));
        Assert.True(first.GetProperty("has_more").GetBoolean());
        JsonElement rest = await GetJsonAsync(server, $"/v1/fine_tuning/jobs?limit=2&after={ids[1]}");
        Assert.Equal([ids[0]], Ids(rest));
        Assert.False(rest.GetProperty("has_more").GetBoolean());
        Assert.Equal(ids.Reverse(), Ids(await GetJsonAsync(server, "/v1/fine_tuning/jobs")));

        foreach (string limit in new[] { "0", "101", "ten" })
        {
            (HttpStatusCode status, string body) = await SendAsync(server, HttpMethod.Get, $"/v1/fine_tuning/jobs?limit={limit}", AdminKey);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("limit", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("param").GetString());
        }
    }

    [Fact]
    public async Task Events_tell_the_jobs_story_newest_first_and_checkpoints_start_empty()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);
        string id = (await CreateAsync(server, file)).GetProperty("id").GetString()!;

        JsonElement events = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/events");
        Assert.Equal("list", events.GetProperty("object").GetString());
        Assert.False(events.GetProperty("has_more").GetBoolean());
        JsonElement[] data = [.. events.GetProperty("data").EnumerateArray()];
        Assert.Equal([$"Validating training file: {file}", $"Created fine-tuning job: {id}"], data.Select(e => e.GetProperty("message").GetString()));
        foreach (JsonElement e in data)
        {
            Assert.Equal("fine_tuning.job.event", e.GetProperty("object").GetString());
            Assert.StartsWith("ftevent-", e.GetProperty("id").GetString());
            Assert.Equal("info", e.GetProperty("level").GetString());
            Assert.Equal("message", e.GetProperty("type").GetString());
            // The spec types data as an object; OpenAI sends {} on a message event, and typed clients choke on null.
            Assert.Equal(JsonValueKind.Object, e.GetProperty("data").ValueKind);
            Assert.Empty(e.GetProperty("data").EnumerateObject());
            Assert.True(e.GetProperty("created_at").GetInt64() > 0);
        }

        JsonElement page = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/events?limit=1");
        Assert.True(page.GetProperty("has_more").GetBoolean());
        JsonElement next = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/events?limit=1&after={Ids(page)[0]}");
        Assert.Equal([data[1].GetProperty("id").GetString()!], Ids(next));

        JsonElement checkpoints = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/checkpoints");
        Assert.Equal("list", checkpoints.GetProperty("object").GetString());
        Assert.Empty(checkpoints.GetProperty("data").EnumerateArray());
        Assert.False(checkpoints.GetProperty("has_more").GetBoolean());
        Assert.Equal(JsonValueKind.Null, checkpoints.GetProperty("first_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, checkpoints.GetProperty("last_id").ValueKind);
    }

    [Fact]
    public async Task A_job_that_has_not_started_is_cancelled_once_and_then_refused_without_change()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);
        string id = (await CreateAsync(server, file)).GetProperty("id").GetString()!;

        (HttpStatusCode status, JsonElement cancelled) = await PostAsync(server, $"/v1/fine_tuning/jobs/{id}/cancel", body: null);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Number, cancelled.GetProperty("finished_at").ValueKind);
        JsonElement events = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/events");
        Assert.Equal("Job cancelled", events.GetProperty("data")[0].GetProperty("message").GetString());

        (HttpStatusCode again, JsonElement refusal) = await PostAsync(server, $"/v1/fine_tuning/jobs/{id}/cancel", body: null);

        Assert.Equal(HttpStatusCode.BadRequest, again);
        JsonElement error = refusal.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal($"Job {id} has already been cancelled and cannot be cancelled.", error.GetProperty("message").GetString());
        Assert.Equal(cancelled.GetRawText(), (await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}")).GetRawText());
        Assert.Equal(events.GetRawText(), (await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/events")).GetRawText());
    }

    [Fact]
    public async Task Creating_a_job_wakes_the_worker()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);
        JobSignals signals = server.Services.GetRequiredService<JobSignals>();
        Task wake = signals.WaitForJobAsync(CancellationToken.None);
        Assert.False(wake.IsCompleted);

        await CreateAsync(server, file);

        await wake.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Cancelling_a_running_job_trips_its_token_and_the_worker_ends_it_cancelled()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);
        string id = (await CreateAsync(server, file)).GetProperty("id").GetString()!;
        // Play the worker: claim the job and hold its cancellation token.
        JobStore store = server.Services.GetRequiredService<JobStore>();
        Assert.True(store.TryTransition(id, JobStatus.ValidatingFiles, JobStatus.Queued));
        Assert.Equal(id, store.ClaimNextJob(JobStatus.Queued, JobStatus.Running)?.Id);
        CancellationToken token = server.Services.GetRequiredService<JobSignals>().TokenFor(id);

        (HttpStatusCode status, JsonElement job) = await PostAsync(server, $"/v1/fine_tuning/jobs/{id}/cancel", body: null);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("running", job.GetProperty("status").GetString()); // until the worker has stopped it
        Assert.True(token.IsCancellationRequested);
        Assert.Equal("Cancellation requested; stopping the job",
            (await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}/events")).GetProperty("data")[0].GetProperty("message").GetString());

        Assert.False(store.MarkSucceeded(id, "ft:late", 1, "/late"));
        Assert.True(store.MarkCancelled(id));
        JsonElement ended = await GetJsonAsync(server, $"/v1/fine_tuning/jobs/{id}");
        Assert.Equal("cancelled", ended.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, ended.GetProperty("fine_tuned_model").ValueKind);
    }

    [Fact]
    public async Task Unknown_jobs_are_404_on_every_route()
    {
        await using RunningServer server = await StartAsync();

        foreach ((HttpMethod method, string path) in new[]
        {
            (HttpMethod.Get, "/v1/fine_tuning/jobs/ftjob-nope"),
            (HttpMethod.Post, "/v1/fine_tuning/jobs/ftjob-nope/cancel"),
            (HttpMethod.Get, "/v1/fine_tuning/jobs/ftjob-nope/events"),
            (HttpMethod.Get, "/v1/fine_tuning/jobs/ftjob-nope/checkpoints"),
        })
        {
            (HttpStatusCode status, string body) = await SendAsync(server, method, path, AdminKey);
            Assert.Equal(HttpStatusCode.NotFound, status);
            Assert.Equal("No such fine-tuning job: ftjob-nope", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString());
        }
    }

    [Fact]
    public async Task Bad_requests_are_refused_naming_the_field_and_create_nothing()
    {
        await using RunningServer server = await StartAsync();
        string file = await UploadAsync(server);
        string seventeenPairs = "{" + string.Join(",", Enumerable.Range(0, 17).Select(i => $"\"k{i}\":\"v\"")) + "}";
        (string Body, HttpStatusCode Status, string Param)[] cases =
        [
            (Json("""{"model":"gpt-4o-mini","training_file":"FILE"}""", file), HttpStatusCode.NotFound, "model"),
            (Json("""{"training_file":"FILE"}""", file), HttpStatusCode.BadRequest, "model"),
            (Json("""{"model":"MODEL"}""", file), HttpStatusCode.BadRequest, "training_file"),
            (Json("""{"model":"MODEL","training_file":"file-nope"}""", file), HttpStatusCode.BadRequest, "training_file"),
            (Json("""{"model":"MODEL","training_file":"FILE","validation_file":"file-nope"}""", file), HttpStatusCode.BadRequest, "validation_file"),
            (Json("""{"model":"MODEL","training_file":"FILE","method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":0}}}}""", file),
                HttpStatusCode.BadRequest, "method.supervised.hyperparameters.n_epochs"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"n_epochs":"3"}}""", file), HttpStatusCode.BadRequest, "hyperparameters.n_epochs"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"batch_size":257}}""", file), HttpStatusCode.BadRequest, "hyperparameters.batch_size"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"learning_rate_multiplier":0}}""", file),
                HttpStatusCode.BadRequest, "hyperparameters.learning_rate_multiplier"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"warmup_steps":10}}""", file), HttpStatusCode.BadRequest, "hyperparameters.warmup_steps"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"lora_rank":257}}""", file), HttpStatusCode.BadRequest, "hyperparameters.lora_rank"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"lora_target_modules":["wte"]}}""", file),
                HttpStatusCode.BadRequest, "hyperparameters.lora_target_modules"),
            (Json("""{"model":"MODEL","training_file":"FILE","hyperparameters":{"lora_rank":0,"lora_alpha":8}}""", file), HttpStatusCode.BadRequest, "hyperparameters.lora_alpha"),
            (Json("""{"model":"MODEL","training_file":"FILE","method":{"type":"dpo","dpo":{}}}""", file), HttpStatusCode.BadRequest, "method.type"),
            (Json("""{"model":"MODEL","training_file":"FILE","suffix":"a:b"}""", file), HttpStatusCode.BadRequest, "suffix"),
            (Json("""{"model":"MODEL","training_file":"FILE","suffix":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}""", file), HttpStatusCode.BadRequest, "suffix"),
            (Json("""{"model":"MODEL","training_file":"FILE","seed":-1}""", file), HttpStatusCode.BadRequest, "seed"),
            (Json("""{"model":"MODEL","training_file":"FILE","seed":"x"}""", file), HttpStatusCode.BadRequest, "seed"),
            (Json("""{"model":"MODEL","training_file":"FILE","metadata":METADATA}""", file).Replace("METADATA", seventeenPairs), HttpStatusCode.BadRequest, "metadata"),
            (Json("""{"model":"MODEL","training_file":"FILE","integrations":[{"type":"wandb","wandb":{"project":"p"}}]}""", file),
                HttpStatusCode.BadRequest, "integrations"),
        ];

        var failures = new List<string>();
        foreach ((string body, HttpStatusCode expectedStatus, string expectedParam) in cases)
        {
            (HttpStatusCode status, JsonElement response) = await PostAsync(server, "/v1/fine_tuning/jobs", body);
            string? param = response.TryGetProperty("error", out JsonElement error) ? error.GetProperty("param").GetString() : null;
            if (status != expectedStatus || param != expectedParam)
            {
                failures.Add($"{body}: {(int)status} param={param}, expected {(int)expectedStatus} param={expectedParam}");
            }
        }

        Assert.Empty(failures);
        Assert.Empty((await GetJsonAsync(server, "/v1/fine_tuning/jobs")).GetProperty("data").EnumerateArray());
    }

    [Fact]
    public async Task Fine_tuning_needs_the_admin_key_not_the_inference_key()
    {
        await using RunningServer server = await StartAsync();

        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(server, HttpMethod.Get, "/v1/fine_tuning/jobs", InferenceKey)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(server, HttpMethod.Get, "/v1/fine_tuning/jobs", key: null)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await PostAsync(server, "/v1/fine_tuning/jobs", Json("""{"model":"MODEL","training_file":"file-x"}""", "file-x"), InferenceKey)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(server, HttpMethod.Post, "/v1/fine_tuning/jobs/ftjob-x/cancel", key: null)).Status);
    }

    [Fact]
    public async Task Jobs_and_their_events_are_there_again_after_a_restart()
    {
        string id;
        string[] events;
        await using (RunningServer first = await StartAsync())
        {
            string file = await UploadAsync(first);
            id = (await CreateAsync(first, file)).GetProperty("id").GetString()!;
            events = Ids(await GetJsonAsync(first, $"/v1/fine_tuning/jobs/{id}/events"));
        }

        await using RunningServer second = await StartAsync();
        Assert.Equal([id], Ids(await GetJsonAsync(second, "/v1/fine_tuning/jobs")));
        Assert.Equal(id, (await GetJsonAsync(second, $"/v1/fine_tuning/jobs/{id}")).GetProperty("id").GetString());
        // A worker may have added events since; the old ones are all still there.
        Assert.Subset(Ids(await GetJsonAsync(second, $"/v1/fine_tuning/jobs/{id}/events?limit=100")).ToHashSet(), events.ToHashSet());
    }

#pragma warning disable OPENAI001 // the SDK marks its fine-tuning client experimental
    [Fact]
    public async Task The_OpenAI_SDKs_fine_tuning_client_creates_reads_lists_and_cancels_a_job()
    {
        await using RunningServer server = await StartAsync();
        var client = new OpenAIClient(new ApiKeyCredential(AdminKey), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        using var content = new MemoryStream(Encoding.UTF8.GetBytes(ChatExamples));
        OpenAIFile file = await client.GetOpenAIFileClient().UploadFileAsync(content, "sdk.jsonl", FileUploadPurpose.FineTune);
        FineTuningClient fineTuning = client.GetFineTuningClient();

        FineTuningJob job = await fineTuning.FineTuneAsync(Model, file.Id, waitUntilCompleted: false, new FineTuningOptions
        {
            Suffix = "sdk",
            Seed = 7,
            TrainingMethod = FineTuningTrainingMethod.CreateSupervised(
                HyperparameterBatchSize.CreateAuto(), HyperparameterEpochCount.CreateEpochCount(2), HyperparameterLearningRate.CreateMultiplier(0.5)),
            Metadata = { ["purpose"] = "sdk-test" },
        });

        Assert.StartsWith("ftjob-", job.JobId);
        Assert.Equal(FineTuningStatus.ValidatingFiles, job.Status);
        Assert.Equal(Model, job.BaseModel);
        Assert.Equal(file.Id, job.TrainingFileId);
        Assert.Equal(7, job.Seed);
        Assert.Equal("sdk", job.UserProvidedSuffix);
        Assert.Equal("sdk-test", job.Metadata["purpose"]);
        var supervised = Assert.IsType<HyperparametersForSupervised>(job.MethodHyperparameters);
        Assert.Equal(2, supervised.EpochCount);
        Assert.Equal(0.5f, supervised.LearningRateMultiplier);

        FineTuningJob read = await fineTuning.GetJobAsync(job.JobId);
        Assert.Equal(job.JobId, read.JobId);
        Assert.Contains(await fineTuning.GetJobsAsync().ToListAsync(), j => j.JobId == job.JobId);

        // One event a page: the SDK follows has_more and the last id through every page.
        List<FineTuningEvent> events = await job.GetEventsAsync(new GetEventsOptions { PageSize = 1 }).ToListAsync();
        Assert.Equal([$"Validating training file: {file.Id}", $"Created fine-tuning job: {job.JobId}"], events.Select(e => e.Message));
        Assert.Empty(await job.GetCheckpointsAsync(new GetCheckpointsOptions()).ToListAsync());

        await job.CancelAndUpdateAsync();
        Assert.Equal(FineTuningStatus.Cancelled, job.Status);
        Assert.Equal(FineTuningStatus.Cancelled, (await fineTuning.GetJobAsync(job.JobId)).Status);
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => job.CancelAndUpdateAsync());
        Assert.Equal(400, refused.Status);
    }
#pragma warning restore OPENAI001

    private static void AssertHyperparameters(JsonElement actual, string expected) =>
        Assert.Equal(JsonDocument.Parse(expected).RootElement.GetRawText().Replace(" ", ""), actual.GetRawText());

    /// <summary>A request body with MODEL and FILE standing for the model and an uploaded file's id.</summary>
    private static string Json(string template, string file) => template.Replace("MODEL", Model).Replace("FILE", file);

    private static string[] Ids(JsonElement list) => [.. list.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()!)];

    private static async Task<string> UploadAsync(RunningServer server)
    {
        (HttpStatusCode status, string body) = await AuthorizedRequests.UploadAsync(server.Http, ChatExamples, "train.jsonl", AdminKey);
        Assert.Equal(HttpStatusCode.OK, status);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> CreateAsync(RunningServer server, string file)
    {
        (HttpStatusCode status, JsonElement job) = await PostAsync(server, "/v1/fine_tuning/jobs", Json("""{"model":"MODEL","training_file":"FILE"}""", file));
        Assert.Equal(HttpStatusCode.OK, status);
        return job;
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(RunningServer server, string path, string? body, string key = AdminKey)
    {
        (HttpStatusCode status, string text) = await AuthorizedRequests.SendAsync(server.Http, HttpMethod.Post, path, key, body);
        return (status, JsonDocument.Parse(text).RootElement);
    }

    private static async Task<JsonElement> GetJsonAsync(RunningServer server, string path)
    {
        (HttpStatusCode status, string body) = await SendAsync(server, HttpMethod.Get, path, AdminKey);
        Assert.True(status == HttpStatusCode.OK, $"{path}: {(int)status} {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    private static Task<(HttpStatusCode Status, string Body)> SendAsync(RunningServer server, HttpMethod method, string path, string? key) =>
        AuthorizedRequests.SendAsync(server.Http, method, path, key);
}
