using System.Diagnostics;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver random-model --shape 124M --output DIR [--tokenizer DIR] [--seed N]</c>: writes a
/// GPT-2-shaped checkpoint with random weights, which costs the same to serve as the real model.
/// </summary>
public static class RandomModelCommand
{
    public const string Usage = "Usage: llmserver random-model --shape 124M|355M|774M|1.5B --output DIR --tokenizer DIR [--seed N] [--max-positions N]";

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
            Console.Error.WriteLine("  --tokenizer: a directory with GPT-2's vocab.json and merges.txt (any GPT-2 checkpoint has them)");
            return args.Contains("--help") ? 0 : 2;
        }
        Gpt2Config shape = RandomCheckpoint.Shape(values.GetValueOrDefault("--shape", "124M"));
        if (values.TryGetValue("--max-positions", out string? positions))
        {
            shape = shape with { MaxPositions = int.Parse(positions) };
        }
        string tokenizer = values["--tokenizer"];
        if (!File.Exists(Path.Combine(tokenizer, "vocab.json")) || !File.Exists(Path.Combine(tokenizer, "merges.txt")))
        {
            Console.Error.WriteLine($"error: {tokenizer} has no vocab.json and merges.txt");
            return 2;
        }
        var clock = Stopwatch.StartNew();
        RandomCheckpoint.Create(shape, values["--output"], tokenizer, long.Parse(values.GetValueOrDefault("--seed", "0")));
        Console.WriteLine($"wrote {shape.ParameterCount():N0}-parameter GPT-2 ({shape.LayerCount} layers, {shape.EmbeddingSize} wide) to {values["--output"]} in {clock.Elapsed.TotalSeconds:F1}s");
        return 0;
    }
}
