using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
using static LlmServer.Inference.Tests.Models.CheckpointVariants;
using TensorToWrite = LlmServer.Inference.Models.Safetensors.SafetensorsWriter.TensorToWrite;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// The layouts real GPT-2 checkpoints come in, each generated here from the fixture, must load
/// to the same network; broken ones must fail with one line naming the file and the problem.
/// </summary>
public sealed class CheckpointLoaderTests : IDisposable
{
    private const string Fixture = "gpt2-random-2l-64d";
    private static readonly long[] Probe = [15496, 11, 616, 1438, 318];
    private readonly CheckpointVariants _variants = new();

    public void Dispose() => _variants.Dispose();

    [Fact]
    public void Keys_without_the_transformer_prefix_load_the_same_weights()
    {
        string variant = _variants.WriteVariant(Fixture, "no-prefix", tensors => tensors.Select(t => t with { Name = t.Name["transformer.".Length..] }));
        AssertSameLogits(Fixture, variant, Probe);
    }

    [Fact]
    public void Stored_attention_mask_buffers_are_ignored()
    {
        string variant = _variants.WriteVariant(Fixture, "buffers", tensors => tensors.Concat(
        [
            Tensor("transformer.h.0.attn.bias", [1, 1, 128, 128], new float[128 * 128]),
            Tensor("transformer.h.1.attn.bias", [1, 1, 128, 128], new float[128 * 128]),
            Tensor("transformer.h.0.attn.masked_bias", [], [-1e4f]),
        ]));
        AssertSameLogits(Fixture, variant, Probe);
    }

    [Fact]
    public void A_sharded_checkpoint_with_an_index_loads_the_same_weights()
    {
        string directory = _variants.WriteShards(Fixture, "sharded", CheckpointVariants.ReadTensors(Fixture));
        AssertSameLogits(Fixture, directory, Probe);
    }

    [Theory]
    [InlineData(ScalarType.Float16, SafetensorsDtype.F16)]
    [InlineData(ScalarType.BFloat16, SafetensorsDtype.BF16)]
    public void Half_precision_tensors_are_widened_exactly_to_float32(ScalarType halfType, SafetensorsDtype stored)
    {
        using var scope = NewDisposeScope();
        string variant = _variants.WriteVariant(Fixture, stored.ToString(), tensors => tensors.Select(t =>
        {
            Tensor original = FromBytes(t);
            return t with { Dtype = stored, Data = original.to(halfType).bytes.ToArray() };
        }));

        using Gpt2Model loaded = CheckpointLoader.Load(variant, ScalarType.Float32, CPU);
        using Gpt2Model reference = LoadFixture();
        Dictionary<string, Tensor> loadedWeights = loaded.state_dict();
        foreach ((string name, Tensor weight) in reference.state_dict())
        {
            Tensor expected = weight.to(halfType).to(ScalarType.Float32);
            Assert.True(expected.allclose(loadedWeights[name], rtol: 0, atol: 0), $"{name} differs from its {halfType} rounding");
            Assert.Equal(ScalarType.Float32, loadedWeights[name].dtype);
        }
    }

    [Fact]
    public void A_stored_lm_head_equal_to_wte_stays_tied()
    {
        string variant = _variants.WriteVariant(Fixture, "tied-head", tensors =>
        {
            var list = tensors.ToList();
            TensorToWrite wte = list.Single(t => t.Name == "transformer.wte.weight");
            return list.Append(wte with { Name = "lm_head.weight" });
        });
        using Gpt2Model model = CheckpointLoader.Load(variant, ScalarType.Float32, CPU);
        Assert.DoesNotContain("lm_head.weight", model.state_dict().Keys);
        AssertSameLogits(Fixture, variant, Probe);
    }

    [Fact]
    public void A_stored_lm_head_that_differs_from_wte_is_used_for_the_logits()
    {
        using var scope = NewDisposeScope();
        Tensor head = torch.randn(50257, 64, generator: new Generator(7));
        string variant = _variants.WriteVariant(Fixture, "own-head", tensors => tensors.Append(Tensor("lm_head.weight", [50257, 64], head.data<float>().ToArray())));

        using Gpt2Model model = CheckpointLoader.Load(variant, ScalarType.Float32, CPU);
        using var noGrad = torch.no_grad();
        Tensor hidden = torch.randn(3, 64, generator: new Generator(8));
        Assert.True(model.Logits(hidden).allclose(hidden.matmul(head.t()), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public async Task A_vocabulary_padded_past_the_tokenizer_serves_and_never_samples_the_padding()
    {
        // nanoGPT-style checkpoints pad wte to 50304 rows; rows past the tokenizer's 50257 mean nothing.
        const int padded = 50304;
        string variant = _variants.WriteVariant(Fixture, "padded-vocab", tensors => tensors.Select(t =>
        {
            if (t.Name != "transformer.wte.weight")
            {
                return t;
            }
            var bytes = new byte[padded * 64 * sizeof(float)];
            t.Data.Span.CopyTo(bytes);
            return t with { Shape = [padded, 64], Data = bytes };
        }), config => config["vocab_size"] = padded);
        ReferenceCase reference = ReferenceCase.Load(Fixture)[0];

        await using var engine = LlmServer.Inference.Tests.Engine.EngineFactory.StartFromDirectory(variant);
        // A huge bias on a padding row would win every greedy step if padding could be sampled.
        var sampling = new LlmServer.Inference.Sampling.SamplingParameters
        {
            Temperature = 0, MaxTokens = reference.GreedyIds.Length, IgnoreEos = true, Logprobs = 5,
            LogitBias = new Dictionary<int, double> { [padded - 4] = 1000 },
        };
        var tokens = new List<LlmServer.Inference.Sampling.GeneratedToken>();
        await foreach (var generated in engine.GenerateAsync(new LlmServer.Inference.Engine.EngineSubmission("padded", reference.PromptIds, sampling)))
        {
            Assert.Null(generated.ErrorMessage);
            tokens.AddRange(generated.Tokens);
        }
        Assert.Equal(reference.GreedyIds, tokens.Select(t => t.TokenId));
        Assert.All(tokens.SelectMany(t => t.TopLogprobs!), alternative => Assert.True(alternative.TokenId < 50257));
    }

    [Fact]
    public void A_truncated_weights_file_names_the_file_and_says_truncated()
    {
        string directory = _variants.CopyConfig(Fixture, "truncated");
        string weights = Path.Combine(directory, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(Path.Combine(TestFixtures.ModelDirectory(Fixture), "model.safetensors"));
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);

        var error = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(directory, ScalarType.Float32, CPU));
        AssertOneLine(error, weights, "truncated");
    }

    [Fact]
    public void A_corrupt_header_names_the_file()
    {
        string directory = _variants.CopyConfig(Fixture, "corrupt");
        string weights = Path.Combine(directory, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(Path.Combine(TestFixtures.ModelDirectory(Fixture), "model.safetensors"));
        bytes[8] = (byte)'#';   // first byte of the JSON header
        File.WriteAllBytes(weights, bytes);

        var error = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(directory, ScalarType.Float32, CPU));
        AssertOneLine(error, weights, "JSON");
    }

    [Fact]
    public void Missing_weights_and_missing_config_are_named()
    {
        string noWeights = _variants.CopyConfig(Fixture, "no-weights");
        var missingWeights = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(noWeights, ScalarType.Float32, CPU));
        AssertOneLine(missingWeights, Path.Combine(noWeights, "model.safetensors"), "missing");

        string noConfig = _variants.WriteVariant(Fixture, "no-config", tensors => tensors);
        File.Delete(Path.Combine(noConfig, "config.json"));
        var missingConfig = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(noConfig, ScalarType.Float32, CPU));
        AssertOneLine(missingConfig, Path.Combine(noConfig, "config.json"), "missing");
    }

    [Fact]
    public void A_shape_that_disagrees_with_config_names_the_tensor_and_both_shapes()
    {
        string variant = _variants.WriteVariant(Fixture, "shape", tensors => tensors, config => config["n_positions"] = 256);
        var error = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "model.safetensors"), "transformer.wpe.weight");
        Assert.Contains("[128, 64]", error.Message);
        Assert.Contains("[256, 64]", error.Message);
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        string variant = _variants.WriteVariant(Fixture, "missing-tensor", tensors => tensors.Where(t => t.Name != "transformer.ln_f.weight"));
        var error = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "model.safetensors"), "'ln_f.weight'");
    }

    [Fact]
    public void An_unsupported_model_type_is_refused()
    {
        string variant = _variants.WriteVariant(Fixture, "llama", tensors => tensors, config => config["model_type"] = "llama");
        var error = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "config.json"), "unsupported model_type 'llama'");
    }

    [Fact]
    public void Integer_weights_are_refused_with_the_tensor_name()
    {
        string variant = _variants.WriteVariant(Fixture, "int-weights", tensors => tensors.Select(t => t.Name == "transformer.ln_f.bias"
            ? t with { Dtype = SafetensorsDtype.I32 }
            : t));
        var error = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "model.safetensors"), "transformer.ln_f.bias");
    }


    private static Gpt2Model LoadFixture() => CheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);


    private static TensorToWrite Tensor(string name, long[] shape, float[] values)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new TensorToWrite(name, SafetensorsDtype.F32, shape, bytes);
    }

    private static Tensor FromBytes(TensorToWrite stored)
    {
        Tensor result = empty(stored.Shape, ScalarType.Float32);
        result.bytes = stored.Data.ToArray();
        return result;
    }



}
