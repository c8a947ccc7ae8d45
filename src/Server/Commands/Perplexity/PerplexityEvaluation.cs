using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver eval --model DIR --perplexity FILE</c>: perplexity of a text through the engine path the server's
/// prompt logprobs take (a prompt scored with one token sampled and dropped, as /v1/completions does with echo,
/// logprobs and max_tokens 0), so the figure is what a client computing it from those replies would get.
/// </summary>
public static class PerplexityEvaluation
{
    public const string Help = """
        Usage: llmserver eval --model DIR --perplexity FILE [--context N] [--stride N] [--json FILE] [--threads N] [--dtype ...] [--quantization ...]

        Perplexity of FILE: plain text (one document), or JSONL (.jsonl) whose lines hold a "text" string
        or a "tokens" list of token ids (one document each). A text is tokenized as a completion prompt is;
        every token of a document but its first is scored once. Texts longer than the context go through sliding windows, as in the Hugging
        Face perplexity guide: windows of --context tokens (default: the longest prompt the model accepts,
        its maximum length less one) whose ends move by --stride tokens (default: half the context), each
        token predicted from as much left context as its window holds. Windows run concurrently, so the
        engine batches them. Reports tokens scored, mean negative log-likelihood (nats per token),
        perplexity (exp of it), bits per UTF-8 byte of the scored documents, and time.
        """;

    private static readonly string[] ValueFlags = ["--model", "--perplexity", "--context", "--stride", "--json", "--threads", .. ServingPrecision.Flags];

    /// <summary>Windows in flight at once: enough for the engine to fill its batches, few enough that their logprobs stay small.</summary>
    private const int WindowsInFlight = 64;

    private sealed record Document(string Text, IReadOnlyList<int> TokenIds);

    /// <summary>A document as the file holds it: text to tokenize, or token ids scored as they are.</summary>
    private sealed record DocumentSource(string? Text, IReadOnlyList<int>? TokenIds, int LineNumber);

    private sealed record Result(int Documents, long TokensScored, int Windows, int Context, int Stride, double TotalNll, long Bytes, TimeSpan Elapsed)
    {
        public double MeanNll => TotalNll / TokensScored;
        public double Perplexity => Math.Exp(MeanNll);
        public double BitsPerByte => TotalNll / Math.Log(2) / Bytes;
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        try
        {
            var arguments = CommandArguments.Parse(args, ValueFlags, []);
            string model = Path.GetFullPath(arguments.Required("--model"));
            string path = CommandArguments.ExistingFile(arguments.Required("--perplexity"), "--perplexity");
            IReadOnlyList<DocumentSource> sources = ReadDocuments(path);
            int? context = arguments.Has("--context") ? arguments.Int("--context", 0) : null;
            int? stride = arguments.Has("--stride") ? arguments.Int("--stride", 0) : null;
            Result result = await ScoreAsync(model, path, sources, context, stride, arguments.Int("--threads", 0), ServingPrecision.From(arguments));
            Report(result, model, path, arguments.String("--json"));
            return 0;
        }
        // CheckpointFormatException: --model is no directory of a model the engine can load.
        catch (Exception e) when (e is CommandLineException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
            or CheckpointFormatException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    private static async Task<Result> ScoreAsync(string modelDirectory, string path, IReadOnlyList<DocumentSource> sources, int? askedContext, int? askedStride, int threads,
        ServingPrecision precision)
    {
        await using EngineClient engine = OfflineEngine.Start(modelDirectory, threads, precision);
        ServedModel model = await engine.Ready;
        // The server refuses a prompt of the full maximum length: one position is kept for the token it samples.
        int longestPrompt = model.MaxModelLen - 1;
        int context = askedContext ?? longestPrompt;
        if (context < 2 || context > longestPrompt)
        {
            throw new CommandLineException($"--context must be between 2 and {longestPrompt} (this model's maximum length less one), got {context}");
        }
        int stride = askedStride ?? Math.Max(1, context / 2);
        if (stride < 1 || stride >= context)
        {
            throw new CommandLineException($"--stride must be between 1 and {context - 1} (the context less one: a window needs a token before the ones it scores), got {stride}");
        }

        // Tokenized as /v1/completions tokenizes a text prompt (Llama 3 gets its BOS).
        List<Document> documents = sources.Select(source => Tokenize(source, model.Tokenizer, path)).ToList();
        List<Document> scored = documents.Where(d => d.TokenIds.Count >= 2).ToList();
        if (scored.Count == 0)
        {
            throw new InvalidDataException(documents.Count == 1
                ? $"{path}: the text is {documents[0].TokenIds.Count} token(s); perplexity needs at least two, the first predicting the second"
                : $"{path}: every document is under two tokens; perplexity needs at least two, the first predicting the second");
        }

        var clock = Stopwatch.StartNew();
        var work = scored.SelectMany((d, i) => SlidingWindows.Plan(d.TokenIds.Count, context, stride).Select(w => (Document: d, Index: i, Window: w))).ToList();
        using var inFlight = new SemaphoreSlim(WindowsInFlight);
        double[] windowNll = await Task.WhenAll(work.Select(async (item, n) =>
        {
            await inFlight.WaitAsync();
            try
            {
                return await ScoreWindowAsync(engine, $"perplexity-{item.Index}-{n}", item.Document.TokenIds, item.Window);
            }
            finally
            {
                inFlight.Release();
            }
        }));
        return new Result(scored.Count, scored.Sum(d => (long)d.TokenIds.Count - 1), work.Count, context, stride, windowNll.Sum(),
            scored.Sum(d => (long)Encoding.UTF8.GetByteCount(d.Text)), clock.Elapsed);
    }

    /// <summary>The negative log-likelihood of the window's scored tokens.</summary>
    private static async Task<double> ScoreWindowAsync(EngineClient engine, string requestId, IReadOnlyList<int> tokenIds, ScoringWindow window)
    {
        int[] prompt = tokenIds.Skip(window.Start).Take(window.Length).ToArray();
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = 1, PromptLogprobs = 0 };
        IReadOnlyList<PromptTokenLogprob?>? logprobs = null;
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(requestId, prompt, sampling)))
        {
            if (generated.ErrorMessage is { } error)
            {
                throw new InvalidDataException($"window of tokens {window.Start}..{window.End}: the engine failed: {error}");
            }
            logprobs ??= generated.PromptLogprobs;
        }
        if (logprobs is null || logprobs.Count != prompt.Length)
        {
            throw new InvalidDataException($"window of tokens {window.Start}..{window.End}: the engine returned no prompt logprobs");
        }
        double nll = 0;
        for (int position = window.FirstScored - window.Start; position < prompt.Length; position++)
        {
            nll -= logprobs[position]!.Logprob;
        }
        return nll;
    }

    private static Document Tokenize(DocumentSource source, ITokenizer tokenizer, string path)
    {
        if (source.TokenIds is { } ids)
        {
            foreach (int id in ids.Where(id => !tokenizer.IsValidId(id)).Take(1))
            {
                throw new InvalidDataException($"{path}: line {source.LineNumber}: \"tokens\" holds {id}, not a token id of this model (0..{tokenizer.VocabSize - 1})");
            }
            return new Document(tokenizer.Decode(ids), ids);
        }
        return new Document(source.Text!, tokenizer.Encode(source.Text!, addSpecialTokens: true, int.MaxValue, CancellationToken.None));
    }

    /// <summary>A .jsonl file: one document per line ("text" or "tokens"); anything else: the whole file as one text.</summary>
    private static IReadOnlyList<DocumentSource> ReadDocuments(string path)
    {
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            string text = File.ReadAllText(path);
            return string.IsNullOrWhiteSpace(text) ? throw new InvalidDataException($"{path}: no text") : [new DocumentSource(text, null, 1)];
        }
        List<DocumentSource> documents = JsonLinesFile.Read(path, "not a JSON object with a \"text\" string or a \"tokens\" list of ids",
            (root, lineNumber) => root["tokens"] is JsonArray tokens
                ? new DocumentSource(null, tokens.Select(t => (int)t!).ToArray(), lineNumber)
                : new DocumentSource((string?)root["text"] ?? throw new InvalidDataException("neither \"text\" nor \"tokens\""), null, lineNumber));
        return documents.Any(d => d.TokenIds is { Count: > 0 } || !string.IsNullOrWhiteSpace(d.Text)) ? documents : throw new InvalidDataException($"{path}: no text");
    }

    private static void Report(Result result, string model, string path, string? jsonPath)
    {
        var lines = new (string Name, string Value)[]
        {
            ("documents", result.Documents.ToString(CultureInfo.InvariantCulture)),
            ("tokens scored", result.TokensScored.ToString(CultureInfo.InvariantCulture)),
            ("windows", string.Create(CultureInfo.InvariantCulture, $"{result.Windows} (context {result.Context}, stride {result.Stride})")),
            ("mean NLL", string.Create(CultureInfo.InvariantCulture, $"{result.MeanNll:F4} nats/token")),
            ("perplexity", string.Create(CultureInfo.InvariantCulture, $"{result.Perplexity:F4}")),
            ("bits per byte", string.Create(CultureInfo.InvariantCulture, $"{result.BitsPerByte:F4}")),
            ("time", string.Create(CultureInfo.InvariantCulture, $"{result.Elapsed.TotalSeconds:F1} s ({result.TokensScored / result.Elapsed.TotalSeconds:F0} tokens/s)")),
        };
        foreach ((string name, string value) in lines)
        {
            Console.WriteLine($"{name,-14} {value}");
        }
        if (jsonPath is not null)
        {
            var json = new JsonObject
            {
                ["model"] = model,
                ["file"] = Path.GetFullPath(path),
                ["documents"] = result.Documents,
                ["tokens_scored"] = result.TokensScored,
                ["windows"] = result.Windows,
                ["context"] = result.Context,
                ["stride"] = result.Stride,
                ["total_nll"] = result.TotalNll,
                ["mean_nll"] = result.MeanNll,
                ["perplexity"] = result.Perplexity,
                ["bits_per_byte"] = result.BitsPerByte,
                ["seconds"] = result.Elapsed.TotalSeconds,
            };
            File.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
    }
}
