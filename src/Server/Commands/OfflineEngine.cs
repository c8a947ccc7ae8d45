using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Quantization;

namespace LlmServer.Commands;

/// <summary>The engine the offline eval modes drive directly: the serving engine itself, without the HTTP host.</summary>
internal static class OfflineEngine
{
    public static EngineClient Start(string modelDirectory, int threads, ServingPrecision precision) => new(new EngineOptions
    {
        ModelDirectory = modelDirectory,
        ServedModelName = "eval",
        KvCacheMemoryBytes = 256L << 20,
        CpuThreads = threads,
        Weights = precision.Weights,
    });
}

/// <summary>
/// <c>--dtype</c> and <c>--quantization</c> as <c>serve</c> takes them on the CPU, so an evaluation measures the
/// weights a server would serve: float32, bfloat16 weights, or int8 weights.
/// </summary>
internal sealed record ServingPrecision(string Dtype, string Quantization)
{
    public static readonly string[] Flags = ["--dtype", "--quantization"];

    public const string Help = "--dtype float32|bfloat16 and --quantization none|int8 serve the weights as `serve` would on the CPU (default float32)";

    public static ServingPrecision From(CommandArguments arguments)
    {
        string dtype = arguments.String("--dtype") ?? "auto";
        string quantization = arguments.String("--quantization") ?? "none";
        if (dtype is not ("auto" or "float32" or "bfloat16"))
        {
            throw new CommandLineException($"--dtype must be auto, float32 or bfloat16 on the CPU, got '{dtype}'");
        }
        if (quantization is not ("none" or "int8"))
        {
            throw new CommandLineException($"--quantization must be none or int8, got '{quantization}'");
        }
        if (quantization == "int8" && dtype == "bfloat16")
        {
            throw new CommandLineException("--quantization int8 already sets how the weights are kept; drop --dtype bfloat16");
        }
        return new ServingPrecision(dtype, quantization);
    }

    public WeightFormat Weights => EnginePrecision.Resolve("cpu", Dtype, Quantization, kvCacheDtype: null).Weights;

    /// <summary>The same choice as <c>serve</c> flags.</summary>
    public IEnumerable<string> ServeFlags => ["--dtype", Dtype, "--quantization", Quantization];
}
