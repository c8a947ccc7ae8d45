using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Quantization;

/// <summary>
/// The int8 product against torch. Where both sides quantize without loss (integer rows and weights
/// whose largest magnitude is 127, so every scale is 1) the kernel's integer sums must give the exact
/// product; elsewhere it must stay near the product of the dequantized weights.
/// </summary>
public sealed class Int8MatrixTests
{
    // Inputs off the 32-byte step (50) and on it (96, 800); outputs off the block of four (37, 5, 67) and
    // on it (4). 37 and 67 outputs split across threads, each range ending in a partial block.
    public static TheoryData<int, int, bool> Shapes => new()
    {
        { 50, 37, true }, { 50, 37, false },
        { 96, 5, true }, { 96, 5, false },
        { 800, 4, true }, { 800, 4, false },
        { 800, 67, true }, { 800, 67, false },
    };

    // 300 rows of 800 inputs are more than one of the kernel's L2-sized chunks of rows; from
    // WidenedFromRows rows the product widens the weights and runs MKL's float32 GEMM instead.
    private static readonly int[] RowCounts = [1, 2, 3, 33, 300, Int8Matrix.WidenedFromRows];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Integer_rows_times_integer_weights_is_exact(int inputs, int outputs, bool storedAsOutByIn)
    {
        var generator = manual_seed(inputs * 1000 + outputs);
        using Tensor weight = ExactlyQuantizable(outputs, inputs, generator);                    // (out, in)
        using Tensor stored = Stored(weight, storedAsOutByIn);
        using Int8Matrix matrix = Int8Matrix.Quantize(stored, storedAsOutByIn);
        // Integers well inside float32's exact range once added to sums of at most 800 × 127 × 127.
        using Tensor bias = randint(-1000, 1001, [outputs], ScalarType.Float32, generator: generator);

        foreach (int rows in RowCounts)
        {
            using Tensor x = ExactlyQuantizable(rows, inputs, generator);                        // (rows, in)
            foreach (Tensor? b in new[] { null, bias })
            {
                using Tensor expected = ReferenceProduct(x, weight, b);                            // (rows, out)
                using Tensor actual = matrix.Multiply(x, b);
                Assert.Equal([rows, (long)outputs], actual.shape);
                long wrong = actual.ne(expected).sum().item<long>();
                Assert.True(wrong == 0, $"{rows} rows, bias {b is not null}: {wrong} elements differ from the exact product");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Dequantize_is_round_half_even_of_w_over_its_row_scale_times_the_scale(int inputs, int outputs, bool storedAsOutByIn)
    {
        var generator = manual_seed(outputs * 1000 + inputs);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using Tensor stored = Stored(weight, storedAsOutByIn);
        using Int8Matrix matrix = Int8Matrix.Quantize(stored, storedAsOutByIn);

        using Tensor expected = TorchQuantizeDequantize(weight);
        using Tensor actual = matrix.Dequantize()!;

        Assert.Equal([outputs, (long)inputs], actual.shape);
        long wrong = actual.ne(expected).sum().item<long>();
        Assert.True(wrong == 0, $"{wrong} elements differ from torch's quantize-dequantize");
    }

    [Fact]
    public void A_weight_exactly_halfway_between_two_steps_rounds_to_even()
    {
        // From the 2-layer fixture's wte: in float32, w / (max / 127) is exactly -44.5, so torch gives -44,
        // while w × (127 / max) is -44.500004 and would round to -45.
        float max = 0.87548834f, w = -0.30676562f;
        Assert.Equal(-44.5f, w / (max / 127f));
        using Tensor weight = tensor(new[] { max, w }).reshape(1, 2);                              // (out, in)
        using Int8Matrix matrix = Int8Matrix.Quantize(weight, storedAsOutByIn: true);

        using Tensor expected = TorchQuantizeDequantize(weight);
        using Tensor actual = matrix.Dequantize()!;

        Assert.Equal(-44f * (max / 127f), expected[0, 1].item<float>());
        Assert.Equal(expected[0, 1].item<float>(), actual[0, 1].item<float>());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Float_rows_stay_near_the_product_of_the_dequantized_weights(int inputs, int outputs, bool storedAsOutByIn)
    {
        var generator = manual_seed(inputs + outputs);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using Tensor stored = Stored(weight, storedAsOutByIn);
        using Int8Matrix matrix = Int8Matrix.Quantize(stored, storedAsOutByIn);
        using Tensor dequantized = matrix.Dequantize()!;
        using Tensor bias = randn([outputs], generator: generator);

        foreach (int rows in RowCounts)
        {
            using Tensor x = randn([rows, inputs], generator: generator);                         // (rows, in)
            using Tensor expected = ReferenceProduct(x, dequantized, bias);
            using Tensor actual = matrix.Multiply(x, bias);
            // What remains is the rounding of each activation to one of 255 levels of its row's largest
            // magnitude, which partly cancels over the sum. Measured at most 1.2% of the largest output
            // (few outputs and rows make that largest output small); 4% leaves room for other seeds,
            // while a wrong layout, scale or sign gives errors of the order of the output itself.
            double error = RelativeError(actual, expected);
            Assert.True(error < 0.04, $"{rows} rows: max |error| is {error:P2} of max |product|");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Long_prompts_multiply_float_rows_by_the_dequantized_weights(int inputs, int outputs, bool storedAsOutByIn)
    {
        var generator = manual_seed(inputs * 3 + outputs);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using Tensor stored = Stored(weight, storedAsOutByIn);
        using Int8Matrix matrix = Int8Matrix.Quantize(stored, storedAsOutByIn);
        using Tensor dequantized = matrix.Dequantize()!;
        using Tensor bias = randn([outputs], generator: generator);
        using Tensor x = randn([Int8Matrix.WidenedFromRows + 37, inputs], generator: generator); // (rows, in)

        foreach (Tensor? b in new[] { null, bias })
        {
            using Tensor expected = ReferenceProduct(x, dequantized, b);
            using Tensor actual = matrix.Multiply(x, b);
            // The rows are not quantized here (weight-only int8), so only float32 summation order
            // separates the two; the quantized rows of shorter products are off by up to about 1%.
            double error = RelativeError(actual, expected);
            Assert.True(error < 1e-5, $"bias {b is not null}: max |error| is {error:E2} of max |product|");
        }
    }

    [Fact]
    public void Zero_rows_and_zero_weight_rows_give_the_bias()
    {
        const int inputs = 70, outputs = 9, zeroOutput = 2;
        var generator = manual_seed(5);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using (no_grad())
        {
            weight[zeroOutput].zero_();
        }
        using Int8Matrix matrix = Int8Matrix.Quantize(weight, storedAsOutByIn: true);
        using Tensor bias = randn([outputs], generator: generator);
        using Tensor x = randn([3, inputs], generator: generator);                                // (3, in)
        using (no_grad())
        {
            x[1].zero_();
        }

        using Tensor withBias = matrix.Multiply(x, bias);
        using Tensor withoutBias = matrix.Multiply(x, null);

        Assert.True(Same(withBias[1], bias), "an all-zero row must give exactly the bias");
        Assert.True(withoutBias[1].eq(0).all().item<bool>(), "an all-zero row without bias must give zeros");
        using Tensor biasColumn = bias[zeroOutput].expand(3);
        Assert.True(Same(withBias[.., zeroOutput], biasColumn), "an all-zero weight row must give its bias");
        Assert.True(withoutBias[.., zeroOutput].eq(0).all().item<bool>());
        // The other outputs are real products, not the bias.
        Assert.False(Same(withBias[0], bias));
    }

    [Fact]
    public void No_rows_give_an_empty_product_and_a_wrong_width_throws()
    {
        using Tensor weight = randn([6, 40], generator: manual_seed(3));
        using Int8Matrix matrix = Int8Matrix.Quantize(weight, storedAsOutByIn: true);
        using Tensor none = empty([0, 40]);
        using Tensor bias = zeros([6]);

        using Tensor product = matrix.Multiply(none, bias);

        Assert.Equal([0L, 6L], product.shape);
        using Tensor narrow = zeros([2, 39]);
        Assert.Throws<ArgumentException>(() => matrix.Multiply(narrow, null));
    }

    private static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    /// <summary>Integers in [-127, 127] with ±127 in every row, so a symmetric per-row int8 scale is exactly 1.</summary>
    internal static Tensor ExactlyQuantizable(int rows, int columns, TorchSharp.torch.Generator generator)
    {
        Tensor values = randint(-127, 128, [rows, columns], ScalarType.Float32, generator: generator);
        using Tensor column = randint(0, columns, [rows, 1], ScalarType.Int64, generator: generator);
        using Tensor sign = randint(0, 2, [rows, 1], ScalarType.Float32, generator: generator);
        using Tensor extreme = sign.mul(254f).sub(127f);                                           // ±127
        using (no_grad())
        {
            values.scatter_(1, column, extreme);
        }
        return values;
    }

    /// <summary>
    /// Symmetric int8 per output row, written with torch alone: scale = max|w| / 127,
    /// q = round-half-even(w / scale) clamped to ±127, back as q × scale. Rows must not be all zero.
    /// </summary>
    internal static Tensor TorchQuantizeDequantize(Tensor outByIn)
    {
        using Tensor scale = outByIn.abs().amax([1], keepdim: true).div(127f);                    // (out, 1)
        using Tensor quantized = outByIn.div(scale).round().clamp(-127, 127);                     // (out, in), torch.round is half-to-even
        return quantized.mul(scale);
    }

    /// <summary>The (out, in) weight as a checkpoint stores it: as is, or Conv1D's (in, out).</summary>
    internal static Tensor Stored(Tensor outByIn, bool storedAsOutByIn) =>
        storedAsOutByIn ? outByIn.clone() : outByIn.t().contiguous();

    /// <summary>x Wᵀ (+ b) in float64, rounded once to float32.</summary>
    internal static Tensor ReferenceProduct(Tensor x, Tensor outByIn, Tensor? bias)
    {
        using Tensor x64 = x.to(ScalarType.Float64);
        using Tensor w64 = outByIn.to(ScalarType.Float64);
        using Tensor product = x64.matmul(w64.t());                                               // (rows, out)
        if (bias is null)
        {
            return product.to(ScalarType.Float32);
        }
        using Tensor b64 = bias.to(ScalarType.Float64);
        using Tensor sum = product.add(b64);
        return sum.to(ScalarType.Float32);
    }

    /// <summary>max |actual - expected| / max |expected|.</summary>
    internal static double RelativeError(Tensor actual, Tensor expected)
    {
        using Tensor difference = actual.to(ScalarType.Float64).sub(expected.to(ScalarType.Float64));
        return difference.abs().max().item<double>() / expected.abs().max().to(ScalarType.Float64).item<double>();
    }
}
