using System.ComponentModel.DataAnnotations;

namespace LlmServer.Host;

/// <summary>
/// Everything an operator can set, bound from appsettings.json, LLMSERVER_* environment variables
/// (e.g. LLMSERVER_Server__Port) and command-line flags, in that order of precedence.
/// </summary>
public sealed class ServerOptions
{
    public const string Section = "Server";

    /// <summary>A Hugging Face model directory of a supported architecture; the bundled models/demo when not set and present.</summary>
    [Required(ErrorMessage = "--model is required: the path of a Hugging Face model directory (models/demo, served by default, is not here)")]
    public string? Model { get; set; }

    /// <summary>The name clients put in "model"; defaults to the model directory's name.</summary>
    public string? ServedModelName { get; set; }

    /// <summary><see cref="GenerationConfig"/>'s value that ignores generation_config.json's sampling defaults.</summary>
    public const string NeutralGenerationConfig = "vllm";

    /// <summary>
    /// auto: a request's unset temperature, top_p, top_k (and a chat request's max tokens) take the model's
    /// generation_config.json values, as vLLM's --generation-config auto; vllm: the neutral defaults.
    /// </summary>
    [RegularExpression("^(auto|vllm)$", ErrorMessage = "--generation-config must be auto or vllm")]
    public string GenerationConfig { get; set; } = "auto";

    public string Host { get; set; } = "127.0.0.1";

    [Range(0, 65535)]
    public int Port { get; set; } = 8000;

    /// <summary>cpu, cuda or cuda:N.</summary>
    [RegularExpression("^(cpu|cuda(:[0-9]+)?)$", ErrorMessage = "--device must be cpu, cuda or cuda:N")]
    public string Device { get; set; } = "cpu";

    /// <summary>float32, float16 (CUDA) or bfloat16 (on the CPU: bfloat16 weights, float32 arithmetic).</summary>
    [RegularExpression("^(auto|float32|float16|bfloat16)$", ErrorMessage = "--dtype must be auto, float32, float16 or bfloat16")]
    public string Dtype { get; set; } = "auto";

    /// <summary>none, or int8: weight-only, symmetric, per output channel, quantized at load (CPU).</summary>
    [RegularExpression("^(none|int8)$", ErrorMessage = "--quantization must be none or int8")]
    public string Quantization { get; set; } = "none";

    /// <summary>The KV cache's dtype: auto (the model's), float32 or bfloat16.</summary>
    [RegularExpression("^(auto|float32|bfloat16)$", ErrorMessage = "--kv-cache-dtype must be auto, float32 or bfloat16")]
    public string KvCacheDtype { get; set; } = "auto";

    /// <summary>Longest prompt + completion in tokens; defaults to the model's n_positions.</summary>
    [Range(1, int.MaxValue)]
    public int? MaxModelLen { get; set; }

    /// <summary>KV cache size: bytes with an optional unit (2GiB, 512MB), or a fraction of the
    /// memory left on the device after the weights (0.5).</summary>
    public string KvCacheMemory { get; set; } = "1GiB";

    /// <summary>Turns off reuse of cached prompt prefixes.</summary>
    public bool NoPrefixCaching { get; set; }

    /// <summary>Requests that may wait beyond --max-num-seqs; more get 429 with Retry-After.</summary>
    [Range(0, 1_000_000)]
    public int MaxQueue { get; set; } = 256;

    [Range(1, 1024)]
    public int BlockSize { get; set; } = 16;

    [Range(1, 4096)]
    public int MaxNumSeqs { get; set; } = 64;

    [Range(1, 1_000_000)]
    public int MaxNumBatchedTokens { get; set; } = 2048;

    /// <summary>CPU threads for TorchSharp; 0 keeps libtorch's default (one per core).</summary>
    [Range(0, 1024)]
    public int Threads { get; set; }

    /// <summary>The Bearer key inference clients must send; none leaves inference open (as vLLM does).</summary>
    public string? ApiKey { get; set; }

    /// <summary>The Bearer key for files, fine-tuning and admin endpoints; none turns them off.</summary>
    public string? AdminKey { get; set; }

    /// <summary>Where files, fine-tuning jobs and their checkpoints are kept (SQLite + files).</summary>
    public string DataDir { get; set; } = "llmserver-data";

    /// <summary>
    /// The largest request body any endpoint but /v1/files accepts (bytes with an optional unit);
    /// larger gets 413. 8 MiB is far above any body a served model could answer (a prompt that fills
    /// a 1,024-token context is at most 128 KiB of text, ~770 KiB if every byte were sent as a
    /// \uXXXX escape; even a 128k-token context of ordinary text is ~0.5 MB) yet bounds what one
    /// request can make the server hold: the body, then its text as UTF-16, about 3x the body in all.
    /// Kestrel's own default (~28.6 MiB) let 20 MB bodies through.
    /// </summary>
    public string MaxRequestBody { get; set; } = "8MiB";

    /// <summary>The largest file /v1/files accepts (bytes with an optional unit); larger gets 413.</summary>
    public string MaxUploadSize { get; set; } = "512MiB";

    /// <summary>The organization in fine-tuned model names (ft:base:ORGANIZATION:suffix:job) and in jobs' organization_id.</summary>
    [RegularExpression(@"^[^:\s]+$", ErrorMessage = "--organization must be non-empty, without ':' (it separates the parts of a fine-tuned model's name) or spaces")]
    public string Organization { get; set; } = "personal";

    /// <summary>Accept and list fine-tuning jobs but leave them queued: training runs elsewhere.</summary>
    public bool NoTraining { get; set; }

    /// <summary>The most of the engine thread's time a fine-tuning job takes while requests are in flight.</summary>
    [Range(0.0, 1.0)]
    public double TrainingShare { get; set; } = 0.5;

    /// <summary>Seconds a shutdown (SIGTERM) waits for requests in flight before aborting them.</summary>
    [Range(0, 3600)]
    public int DrainTimeout { get; set; } = 30;

    /// <summary>Console log format: text for people, json (Serilog's compact JSON, one event a line) for log collectors.</summary>
    [RegularExpression("^(text|json)$", ErrorMessage = "--log-format must be text or json")]
    public string LogFormat { get; set; } = "text";

    /// <summary>Puts prompt and completion text in the request log lines. Off: only counts are logged.</summary>
    public bool LogPrompts { get; set; }

    /// <summary>
    /// Origins whose browser apps may call the API (CORS): a comma-separated list of
    /// scheme://host[:port], or * for any. None (the default) sends no CORS headers at all.
    /// </summary>
    public string? AllowedOrigins { get; set; }

    /// <summary>Methods that allowed origins may use: a comma-separated list, or * for any.</summary>
    public string AllowedMethods { get; set; } = CrossOriginRequests.Any;

    /// <summary>Request headers that allowed origins may send: a comma-separated list, or * for any.</summary>
    public string AllowedHeaders { get; set; } = CrossOriginRequests.Any;

    /// <summary>An OTLP/gRPC collector (http://collector:4317) that receives traces and metrics; none sends nothing.</summary>
    public string? OtlpEndpoint { get; set; }

    public long MaxUploadBytes => ByteSize.TryParse(MaxUploadSize, out long bytes) ? bytes : 0;

    public long MaxRequestBodyBytes => ByteSize.TryParse(MaxRequestBody, out long bytes) ? bytes : 0;

    /// <summary>--otlp-endpoint as a URL; null when none is set, or when it is not an http(s) URL (validation refuses that).</summary>
    public Uri? OtlpEndpointUri =>
        !string.IsNullOrWhiteSpace(OtlpEndpoint) && Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https" ? uri : null;

    public string ResolvedServedModelName =>
        !string.IsNullOrWhiteSpace(ServedModelName) ? ServedModelName
        : new DirectoryInfo(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Model!))).Name;
}
