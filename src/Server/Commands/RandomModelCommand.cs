using System.Diagnostics;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver random-model [--arch gpt2|llama|mistral|qwen2|qwen3] --shape NAME --output DIR --tokenizer DIR [--seed N] [--max-positions N]</c>:
/// writes a checkpoint of a published shape with random weights, which costs the same to serve as
/// the real model. The tokenizer's files are copied in, so the directory serves as it is.
/// </summary>
public static class RandomModelCommand
{
    public const string Usage = "Usage: llmserver random-model [--arch gpt2|llama|mistral|qwen2|qwen3] --shape NAME --output DIR --tokenizer DIR [--seed N] [--max-positions N]";

    public static int Run(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Count; i += 2)
        {
            values[args[i]] = args[i + 1];
        }
        if (args.Contains("--help") || !values.ContainsKey("--output") || !values.ContainsKey("--tokenizer") || args.Count % 2 != 0)
        {
            Console.Error.WriteLine(Usage);
            Console.Error.WriteLine("  --arch: the architecture (config.json's model_type; default gpt2)");
            Console.Error.WriteLine("  --shape: a published size of that architecture (default: the first):");
            foreach (string architecture in RandomCheckpoint.Architectures)
            {
                Console.Error.WriteLine($"      {architecture}: {string.Join(", ", RandomCheckpoint.ShapeNames(architecture))}");
            }
            Console.Error.WriteLine("  --tokenizer: a directory with a tokenizer.json (Llama 3, Qwen, SmolLM2 checkpoints have one) or GPT-2's");
            Console.Error.WriteLine("      vocab.json and merges.txt; its tokens must fit the shape's vocab_size");
            Console.Error.WriteLine("  --max-positions: a shorter (or longer) context than the shape's own");
            return args.Contains("--help") ? 0 : 2;
        }
        string arch = values.GetValueOrDefault("--arch", "gpt2");
        if (!RandomCheckpoint.Architectures.Contains(arch))
        {
            Console.Error.WriteLine($"error: unknown --arch '{arch}' (supported: {string.Join(", ", RandomCheckpoint.Architectures)})");
            return 2;
        }
        string shapeName = values.GetValueOrDefault("--shape", RandomCheckpoint.ShapeNames(arch)[0]);
        int? maxPositions = values.TryGetValue("--max-positions", out string? positions) ? int.Parse(positions) : null;
        string tokenizerDirectory = values["--tokenizer"];
        string output = values["--output"];
        long seed = long.Parse(values.GetValueOrDefault("--seed", "0"));
        if (!ModelTokenizer.Exists(tokenizerDirectory))
        {
            Console.Error.WriteLine($"error: {tokenizerDirectory} has neither a tokenizer.json nor GPT-2's vocab.json and merges.txt");
            return 2;
        }
        try
        {
            ITokenizer tokenizer = ModelTokenizer.Load(tokenizerDirectory);
            var clock = Stopwatch.StartNew();
            string written;
            if (arch == "gpt2")
            {
                Gpt2Config shape = RandomCheckpoint.Shape(shapeName);
                shape = maxPositions is int p ? shape with { MaxPositions = p } : shape;
                RequireVocabularyFits(tokenizer, shape.VocabSize, tokenizerDirectory);
                RandomCheckpoint.Create(shape, output, tokenizerDirectory, seed);
                written = $"{shape.ParameterCount():N0}-parameter GPT-2 ({shape.LayerCount} layers, {shape.EmbeddingSize} wide)";
            }
            else
            {
                LlamaConfig shape = PublishedLlamaShapes.Get(arch, shapeName);
                shape = maxPositions is int p ? shape with { MaxPositions = p } : shape;
                RequireVocabularyFits(tokenizer, shape.VocabSize, tokenizerDirectory);
                ModelShape model = RandomCheckpoint.Create(shape, output, tokenizerDirectory, seed);
                string source = PublishedLlamaShapes.SourceOf(arch, shapeName);
                written = $"{model.ParameterCount:N0}-parameter {arch} {shapeName} ({(source == "tiny" ? "" : $"the shape of {source}: ")}" +
                    $"{shape.LayerCount} layers, {shape.HiddenSize} wide, {shape.HeadCount} heads, {shape.KvHeadCount} KV heads of {shape.HeadSize})";
            }
            Console.WriteLine($"wrote a {written} to {output} in {clock.Elapsed.TotalSeconds:F1}s");
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or CheckpointFormatException or IOException or InvalidDataException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    // As the server does when it loads the directory: a token id beyond the LM head's rows has no logit.
    private static void RequireVocabularyFits(ITokenizer tokenizer, int vocabSize, string tokenizerDirectory)
    {
        if (tokenizer.VocabSize > vocabSize)
        {
            throw new ArgumentException(
                $"the tokenizer in {tokenizerDirectory} has {tokenizer.VocabSize} tokens but the shape's vocab_size is {vocabSize}; " +
                "pass the tokenizer of this model family");
        }
    }
}
