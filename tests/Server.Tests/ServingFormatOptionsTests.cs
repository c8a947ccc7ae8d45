using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Tests;
using static TorchSharp.torch;

namespace LlmServer.Tests;

/// <summary>
/// How --dtype, --quantization and --kv-cache-dtype become the engine's weight format, compute dtype and KV cache
/// dtype, and which combinations are refused before anything loads.
/// </summary>
public class ServingFormatOptionsTests
{
    private static ServerOptions Options(string dtype = "auto", string quantization = "none", string kvCacheDtype = "auto", string device = "cpu") => new()
    {
        Model = TestFixtures.ModelDirectory("gpt2-random-2l-64d"),
        Dtype = dtype,
        Quantization = quantization,
        KvCacheDtype = kvCacheDtype,
        Device = device,
    };

    private static IReadOnlyList<string> Failures(ServerOptions options) =>
        new ServerOptionsValidator().Validate(null, options).Failures?.ToList() ?? [];

    [Theory]
    [InlineData("bfloat16", "none", WeightFormat.BFloat16)]   // --dtype bfloat16 on the CPU: bfloat16 weights
    [InlineData("auto", "int8", WeightFormat.Int8)]           // --quantization int8
    public void A_reduced_weight_form_on_the_cpu_computes_in_float32(string dtype, string quantization, WeightFormat weights)
    {
        ServerOptions options = Options(dtype, quantization);

        Assert.Empty(Failures(options));
        EngineOptions engine = EngineServices.ToEngineOptions(options);
        Assert.Equal(ScalarType.Float32, engine.Dtype);
        Assert.Equal(weights, engine.Weights);
    }

    [Fact]
    public void The_defaults_keep_float32_weights_and_a_cache_in_the_models_dtype()
    {
        EngineOptions engine = EngineServices.ToEngineOptions(Options());

        Assert.Equal(ScalarType.Float32, engine.Dtype);
        Assert.Equal(WeightFormat.Float32, engine.Weights);
        Assert.Null(engine.KvCacheDtype);
    }

    [Theory]
    [InlineData("auto", null)]
    [InlineData("float32", ScalarType.Float32)]
    [InlineData("bfloat16", ScalarType.BFloat16)]
    public void Kv_cache_dtype_maps_to_the_engines_cache_dtype(string flag, ScalarType? expected)
    {
        ServerOptions options = Options(kvCacheDtype: flag);

        Assert.Empty(Failures(options));
        Assert.Equal(expected, EngineServices.ToEngineOptions(options).KvCacheDtype);
    }

    [Theory]
    [InlineData("float16", "none", "cpu", "--dtype: float16 needs --device cuda")]
    [InlineData("auto", "int8", "cuda", "--quantization: int8 runs on the CPU's own kernels")]
    [InlineData("bfloat16", "int8", "cpu", "--quantization: int8 already sets how the weights are kept; drop --dtype bfloat16")]
    [InlineData("auto", "foo", "cpu", "--quantization: must be none or int8")]
    public void Combinations_that_cannot_serve_are_refused_naming_the_flag(string dtype, string quantization, string device, string message)
    {
        string failure = Assert.Single(Failures(Options(dtype: dtype, quantization: quantization, device: device)));
        Assert.StartsWith(message, failure);
    }

    [Fact]
    public void An_unknown_kv_cache_dtype_is_refused_naming_the_flag()
    {
        string failure = Assert.Single(Failures(Options(kvCacheDtype: "foo")));
        Assert.StartsWith("--kv-cache-dtype: must be auto, float32 or bfloat16", failure);
    }

    [Fact]
    public async Task Serve_help_lists_quantization_and_kv_cache_dtype()
    {
        var (exitCode, output) = await LlmServerProcess.RunAsync(TimeSpan.FromSeconds(60), "serve", "--help");

        Assert.Equal(0, exitCode);
        string[] lines = output.Split('\n').Select(l => l.TrimStart()).ToArray();
        Assert.Contains(lines, l => l.StartsWith("--quantization ", StringComparison.Ordinal) && l.Contains("int8"));
        Assert.Contains(lines, l => l.StartsWith("--kv-cache-dtype ", StringComparison.Ordinal) && l.Contains("bfloat16"));
    }
}
