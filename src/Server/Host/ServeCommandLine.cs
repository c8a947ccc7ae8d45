using System.Text;

namespace LlmServer.Host;

public sealed class CommandLineException(string message) : Exception(message);

/// <summary>One flag of <c>serve</c>, mapped onto a configuration key so that flags, environment and appsettings bind to the same options.</summary>
public sealed record CommandLineFlag(string Name, string ConfigurationKey, string Help, string Default, bool IsSwitch = false);

/// <summary>The flags of the <c>serve</c> command, and the text <c>serve --help</c> prints.</summary>
public static class ServeCommandLine
{
    private static readonly ServerOptions Defaults = new();

    public static readonly IReadOnlyList<CommandLineFlag> Flags =
    [
        Flag("--model", nameof(ServerOptions.Model), "Hugging Face model directory as published: config.json, *.safetensors, tokenizer.json (or GPT-2's vocab.json + merges.txt)", "the bundled demo model, models/demo"),
        Flag("--served-model-name", nameof(ServerOptions.ServedModelName), "name clients use in \"model\"", "the model directory's name"),
        Flag("--generation-config", nameof(ServerOptions.GenerationConfig), "auto: requests' unset temperature, top_p, top_k and chat max tokens take generation_config.json's values (vLLM's default); vllm: ignore them", Defaults.GenerationConfig),
        Flag("--host", nameof(ServerOptions.Host), "address to listen on (0.0.0.0 for all interfaces)", Defaults.Host),
        Flag("--port", nameof(ServerOptions.Port), "port to listen on", Defaults.Port.ToString()),
        Flag("--device", nameof(ServerOptions.Device), "cpu, cuda or cuda:N", Defaults.Device),
        Flag("--dtype", nameof(ServerOptions.Dtype), "auto (float32 on CPU, bfloat16 on CUDA), float32, float16 (CUDA), bfloat16 (on the CPU: bfloat16 weights, float32 arithmetic)", Defaults.Dtype),
        Flag("--quantization", nameof(ServerOptions.Quantization), "none, or int8: weights quantized at load (symmetric, per output channel; CPU)", Defaults.Quantization),
        Flag("--kv-cache-dtype", nameof(ServerOptions.KvCacheDtype), "auto (the model's dtype), float32, bfloat16 (twice the tokens in the same --kv-cache-memory)", Defaults.KvCacheDtype),
        Flag("--max-model-len", nameof(ServerOptions.MaxModelLen), "longest prompt + completion in tokens", "the model's max_position_embeddings (GPT-2: n_positions)"),
        Flag("--kv-cache-memory", nameof(ServerOptions.KvCacheMemory), "KV cache size: 2GiB, 512MB, or a fraction (0.5) of the memory left after the weights", Defaults.KvCacheMemory),
        Flag("--no-prefix-caching", nameof(ServerOptions.NoPrefixCaching), "do not reuse the KV blocks of repeated prompt prefixes", "prefix caching on") with { IsSwitch = true },
        Flag("--max-queue", nameof(ServerOptions.MaxQueue), "requests that may wait beyond --max-num-seqs; more get 429", Defaults.MaxQueue.ToString()),
        Flag("--block-size", nameof(ServerOptions.BlockSize), "tokens per KV cache block", Defaults.BlockSize.ToString()),
        Flag("--max-num-seqs", nameof(ServerOptions.MaxNumSeqs), "requests running at once", Defaults.MaxNumSeqs.ToString()),
        Flag("--max-num-batched-tokens", nameof(ServerOptions.MaxNumBatchedTokens), "tokens per engine step (prompt chunks + decodes)", Defaults.MaxNumBatchedTokens.ToString()),
        Flag("--threads", nameof(ServerOptions.Threads), "CPU threads for TorchSharp (0: one per core)", Defaults.Threads.ToString()),
        Flag("--api-key", nameof(ServerOptions.ApiKey), "Bearer key inference clients must send (prefer LLMSERVER_Server__ApiKey: flags show in ps)", "none: inference is open"),
        Flag("--admin-key", nameof(ServerOptions.AdminKey), "Bearer key for files, fine-tuning and admin endpoints (or LLMSERVER_Server__AdminKey)", "none: those endpoints are off"),
        Flag("--data-dir", nameof(ServerOptions.DataDir), "where files and fine-tuning state are kept (SQLite + files)", Defaults.DataDir),
        Flag("--max-request-body", nameof(ServerOptions.MaxRequestBody), "largest JSON request body (8MiB, 512KB, bytes); larger gets 413 (uploads to /v1/files: --max-upload-size)", Defaults.MaxRequestBody),
        Flag("--max-upload-size", nameof(ServerOptions.MaxUploadSize), "largest file /v1/files accepts (512MiB, 10MB, bytes); larger gets 413", Defaults.MaxUploadSize),
        Flag("--no-training", nameof(ServerOptions.NoTraining), "accept and list fine-tuning jobs but do not train them here", "jobs train in this process") with { IsSwitch = true },
        Flag("--training-share", nameof(ServerOptions.TrainingShare), "most of the engine's time fine-tuning takes while requests are in flight (0..1; it always runs when idle)", Defaults.TrainingShare.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Flag("--drain-timeout", nameof(ServerOptions.DrainTimeout), "seconds a shutdown (SIGTERM) lets requests in flight finish before aborting them", Defaults.DrainTimeout.ToString()),
        Flag("--log-format", nameof(ServerOptions.LogFormat), "console log format: text, or json (compact JSON, one event a line)", Defaults.LogFormat),
        Flag("--log-prompts", nameof(ServerOptions.LogPrompts), "put prompt and completion text in request log lines", "only token counts are logged") with { IsSwitch = true },
        Flag("--allowed-origins", nameof(ServerOptions.AllowedOrigins), "origins whose browser apps may call the API (CORS): comma-separated scheme://host[:port], or *", "none: no CORS headers"),
        Flag("--allowed-methods", nameof(ServerOptions.AllowedMethods), "methods allowed origins may use: comma-separated, or *", Defaults.AllowedMethods),
        Flag("--allowed-headers", nameof(ServerOptions.AllowedHeaders), "request headers allowed origins may send: comma-separated, or * (any the browser asks for)", Defaults.AllowedHeaders),
        Flag("--otlp-endpoint", nameof(ServerOptions.OtlpEndpoint), "OTLP/gRPC collector URL (http://localhost:4317) for traces and metrics", "none: nothing is sent"),
        Flag("--organization", nameof(ServerOptions.Organization), "organization in fine-tuned model names (ft:base:ORG:suffix:job) and jobs' organization_id", Defaults.Organization),
    ];

    private static CommandLineFlag Flag(string name, string property, string help, string defaultValue) =>
        new(name, $"{ServerOptions.Section}:{property}", help, defaultValue);

    public static bool WantsHelp(IEnumerable<string> args) => args.Any(a => a is "--help" or "-h");

    /// <summary>Turns <c>--flag value</c> and <c>--flag=value</c> pairs into configuration overrides.</summary>
    public static Dictionary<string, string?> Parse(IReadOnlyList<string> args)
    {
        var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string name = arg, value;
            int equals = arg.IndexOf('=');
            if (Flags.FirstOrDefault(f => f.Name == arg) is { IsSwitch: true } switchFlag)
            {
                overrides[switchFlag.ConfigurationKey] = "true";
                continue;
            }
            if (equals > 0)
            {
                name = arg[..equals];
                value = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }
            else
            {
                throw new CommandLineException(Flags.Any(f => f.Name == arg) ? $"{arg} needs a value" : $"unknown argument '{arg}' (see serve --help)");
            }
            CommandLineFlag flag = Flags.FirstOrDefault(f => f.Name == name)
                ?? throw new CommandLineException($"unknown flag '{name}' (see serve --help)");
            overrides[flag.ConfigurationKey] = value;
        }
        return overrides;
    }

    /// <summary>
    /// The flags as the Markdown table in docs/configuration.md, which a test keeps equal to this, so
    /// the documented flags and defaults are the ones <c>serve</c> takes.
    /// </summary>
    public static string MarkdownTable()
    {
        var table = new StringBuilder();
        table.Append("| flag | default | meaning |\n|---|---|---|\n");
        foreach (CommandLineFlag flag in Flags)
        {
            table.Append($"| `{flag.Name}` | {Cell(flag.Default)} | {Cell(flag.Help)} |\n");
        }
        return table.ToString();

        // A bare * would start emphasis and | would end the cell.
        static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("*", "\\*", StringComparison.Ordinal);
    }

    public static string Help()
    {
        var text = new StringBuilder();
        text.AppendLine("Usage: llmserver [serve] [--model DIR] [flags]");
        text.AppendLine();
        text.AppendLine("Serves a Hugging Face checkpoint (Llama 3.x, Qwen2/2.5, Qwen3, SmolLM2, Mistral, GPT-2) over OpenAI's API (/v1/chat/completions, /v1/completions, /v1/models).");
        text.AppendLine("Every flag can also be set in appsettings.json next to the executable (section \"Server\") or as an");
        text.AppendLine("environment variable, e.g. LLMSERVER_Server__Port=8080; flags win over the environment, which wins over the file.");
        text.AppendLine("A bad value, from any of them, is one line \"error: --flag: message\" and exit code 2.");
        text.AppendLine("Endpoints: /v1/*, /tokenize, /detokenize, /health, /health/ready, /metrics; API docs at /swagger.");
        text.AppendLine("Other commands, each with --help: bench, random-model, train, fine-tune, demo-corpus, eval.");
        text.AppendLine();
        int width = Flags.Max(f => f.Name.Length) + 2;
        foreach (CommandLineFlag flag in Flags)
        {
            text.AppendLine($"  {flag.Name.PadRight(width)}{flag.Help} [default: {flag.Default}]");
        }
        return text.ToString();
    }
}
