using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Layers;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Tests.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// Serving multiplies by its own copies of the weights (MKL's packed layout of each Conv1D and of
/// the tied LM head); whatever the row count, the product must be the plain x W + b of the parameters,
/// and a weight changed after <see cref="Conv1D.PrepareForServing"/> must not be served stale
/// once it is called again. In bfloat16 or int8 the product is that of the weights as those formats
/// keep them, and training still sees the float32 parameters.
/// </summary>
public sealed class ServingProductTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(33)]
    public void Conv1D_serving_product_equals_x_W_plus_b(int rows)
    {
        using var linear = new Conv1D(24, 40, ScalarType.Float32, CPU);
        var generator = manual_seed(7);
        using (no_grad())
        {
            foreach (var parameter in linear.parameters())
            {
                parameter.copy_(randn(parameter.shape, generator: generator));
            }
        }
        linear.PrepareForServing();
        using Tensor x = randn([rows, 24], generator: generator);
        Tensor bias = linear.parameters().Single(p => p.dim() == 1);

        using Tensor expected = x.matmul(linear.Weight).add(bias);                         // (rows, 40)
        using Tensor biasBefore = bias.clone();
        using Tensor weightBefore = linear.Weight.clone();
        using Tensor served = Serve(linear, x);

        // The product is written into fresh memory, never into the parameters it starts from.
        Assert.True(bias.eq(biasBefore).all().item<bool>());
        Assert.True(linear.Weight.eq(weightBefore).all().item<bool>());
        Assert.Equal([rows, 40L], served.shape);
        Assert.True(served.is_contiguous());
        Assert.True(served.sub(expected).abs().max().item<float>() < 1e-4f);

        // New weights (a hot swap, a training step) are served once PrepareForServing runs again.
        using (no_grad())
        {
            linear.Weight.mul_(2);
        }
        linear.PrepareForServing();
        using Tensor doubled = x.matmul(linear.Weight).add(bias);
        using Tensor servedAgain = Serve(linear, x);
        Assert.True(servedAgain.sub(doubled).abs().max().item<float>() < 1e-4f);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    public void Tied_LM_head_serving_product_equals_hidden_times_wte_transposed(int rows)
    {
        using Gpt2Model model = CheckpointLoader.Load(TestFixtures.ModelDirectory("gpt2-random-2l-64d"), ScalarType.Float32, CPU);
        model.PrepareForServing();
        var generator = manual_seed(11);
        using Tensor hidden = randn([rows, model.Config.EmbeddingSize], generator: generator);  // (rows, C)
        Tensor wte = model.named_parameters().Single(p => p.name == "wte.weight").parameter;     // (V, C)

        using Tensor expected = hidden.matmul(wte.t());                                    // (rows, V)
        using Tensor served = ServeLogits(model, hidden);

        Assert.Equal([rows, (long)model.Config.VocabSize], served.shape);
        Assert.True(served.sub(expected).abs().max().item<float>() < 1e-4f);
    }

    // Linear keeps nn.Linear's (out, in) weight, Conv1D GPT-2's (in, out): both orientations of each format.
    public static TheoryData<WeightFormat, bool> FormatsAndOrientations => new()
    {
        { WeightFormat.Int8, true }, { WeightFormat.Int8, false },
        { WeightFormat.BFloat16, true }, { WeightFormat.BFloat16, false },
    };

    [Theory]
    [MemberData(nameof(FormatsAndOrientations))]
    public void Projection_in_a_serving_format_gives_the_product_of_its_weights_in_that_format(WeightFormat format, bool linearLayout)
    {
        const int inputs = 50, outputs = 37;
        using Projection projection = RandomProjection(inputs, outputs, linearLayout, seed: 21);
        projection.PrepareForServing(format);
        Assert.Equal(format, projection.Serving?.Format);
        Tensor bias = projection.parameters().Single(p => p.dim() == 1);
        using Tensor outByIn = ServingMatrix.OutByIn(projection.Weight, storedAsOutByIn: linearLayout);                  // (out, in)
        using Tensor kept = KeptWeights(outByIn, format);                                     // (out, in)
        var generator = manual_seed(22);

        foreach (int rows in new[] { 1, 2, 33 })
        {
            using Tensor x = ServedRows(rows, inputs, format, generator);                     // (rows, in)
            using Tensor expected = Int8MatrixTests.ReferenceProduct(x, kept, bias);
            using Tensor served = Serve(projection, x);

            Assert.Equal([rows, (long)outputs], served.shape);
            // Float32 rounding only: measured at most 1.5e-7 of the largest output. One int8 weight a
            // step off, or weights left unrounded, miss by 1e-4 or more.
            double error = Int8MatrixTests.RelativeError(served, expected);
            Assert.True(error < 1e-5, $"{format}, {rows} rows: max |error| is {error:E2} of max |product|");
        }
    }

    [Theory]
    [InlineData(WeightFormat.Int8)]
    [InlineData(WeightFormat.BFloat16)]
    public void Tied_LM_head_in_a_serving_format_gives_the_product_of_wte_in_that_format(WeightFormat format)
    {
        using Gpt2Model model = CheckpointLoader.Load(TestFixtures.ModelDirectory("gpt2-random-2l-64d"), ScalarType.Float32, CPU);
        model.PrepareForServing(format);
        Tensor wte = model.named_parameters().Single(p => p.name == "wte.weight").parameter;     // (V, C)
        using Tensor kept = KeptWeights(wte.detach(), format);                                // (V, C)
        var generator = manual_seed(23);

        foreach (int rows in new[] { 1, 33 })
        {
            using Tensor hidden = ServedRows(rows, model.Config.EmbeddingSize, format, generator);  // (rows, C)
            using Tensor expected = Int8MatrixTests.ReferenceProduct(hidden, kept, null);         // (rows, V)
            using Tensor served = ServeLogits(model, hidden);

            Assert.Equal([rows, (long)model.Config.VocabSize], served.shape);
            // As for a projection: measured at most 1.5e-7; the one wte weight whose w / scale is an exact
            // .5 put the int8 head 1.8e-4 off while it was quantized by multiplying by 127 / max.
            double error = Int8MatrixTests.RelativeError(served, expected);
            Assert.True(error < 1e-5, $"{format}, {rows} rows: max |error| is {error:E2} of max |logit|");
        }
    }

    /// <summary>
    /// Training on a projection served in bfloat16 or int8 (a LoRA fine-tune of the served model, QLoRA's way)
    /// multiplies its float32 rows by the weights serving keeps, so an adapter learns to correct those, and
    /// autograd still reaches the input rows and the bias.
    /// </summary>
    [Theory]
    [MemberData(nameof(FormatsAndOrientations))]
    public void Training_forward_of_a_prepared_projection_multiplies_by_the_kept_weights(WeightFormat format, bool linearLayout)
    {
        const int inputs = 50, outputs = 37;
        using Projection projection = RandomProjection(inputs, outputs, linearLayout, seed: 24);
        projection.PrepareForServing(format);
        Assert.NotNull(projection.Serving);
        Tensor bias = projection.parameters().Single(p => p.dim() == 1);
        using Tensor outByIn = ServingMatrix.OutByIn(projection.Weight, storedAsOutByIn: linearLayout);                  // (out, in)
        using Tensor kept = KeptWeights(outByIn, format);
        using Tensor x = randn([5, inputs], generator: manual_seed(25)).requires_grad_();      // (5, in)

        using Tensor expected = Int8MatrixTests.ReferenceProduct(x.detach(), kept, bias.detach());
        using Tensor unquantized = Int8MatrixTests.ReferenceProduct(x.detach(), outByIn, bias.detach());
        using Tensor trained = projection.Forward(x);                                         // (5, out), not under inference mode
        trained.sum().backward();

        Assert.NotNull(x.grad);
        Assert.NotNull(bias.grad);
        // Float32 rounding only; the unquantized weights are off by far more, which the second check shows.
        double error = Int8MatrixTests.RelativeError(trained.detach(), expected);
        Assert.True(error < 1e-5, $"{format}: max |error| is {error:E2} of max |product|");
        Assert.True(Int8MatrixTests.RelativeError(trained.detach(), unquantized) > 1e-4, $"{format}: the training forward used the unquantized weights");
    }

    /// <summary>The weight as <paramref name="format"/> keeps it, computed with torch alone.</summary>
    private static Tensor KeptWeights(Tensor outByIn, WeightFormat format) => format == WeightFormat.Int8
        ? Int8MatrixTests.TorchQuantizeDequantize(outByIn)
        : Bf16MatrixTests.TorchBf16(outByIn);

    /// <summary>
    /// Rows to serve. For int8 they are integers with ±127 in each row, so quantizing them loses nothing
    /// and the product must match the dequantized weights' to float32 rounding: with float rows the
    /// activations' own rounding (about 1% of the output) would hide a product of the unquantized weights.
    /// </summary>
    private static Tensor ServedRows(int rows, int width, WeightFormat format, TorchSharp.torch.Generator generator) =>
        format == WeightFormat.Int8
            ? Int8MatrixTests.ExactlyQuantizable(rows, width, generator)
            : randn([rows, width], generator: generator);

    private static Projection RandomProjection(int inputs, int outputs, bool linearLayout, int seed)
    {
        Projection projection = linearLayout
            ? new Linear(inputs, outputs, hasBias: true, ScalarType.Float32, CPU)
            : new Conv1D(inputs, outputs, ScalarType.Float32, CPU);
        var generator = manual_seed(seed);
        using (no_grad())
        {
            foreach (var parameter in projection.parameters())
            {
                parameter.copy_(randn(parameter.shape, generator: generator));
            }
        }
        return projection;
    }

    private static Tensor ServeLogits(Gpt2Model model, Tensor hidden)
    {
        using var inference = inference_mode();
        return model.Logits(hidden);
    }

    private static Tensor Serve(Projection linear, Tensor x)
    {
        using var inference = inference_mode();
        return linear.Forward(x);
    }
}
