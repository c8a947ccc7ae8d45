using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Quantization;

/// <summary>
/// The bfloat16 product against torch: the weights must round exactly as torch rounds float32 to
/// bfloat16, and the product must be x times those rounded weights up to float32 summation order.
/// </summary>
public sealed class Bf16MatrixTests
{
    // Inputs off the 8-element step (50: rows are copied into padded ones) and on it (96, 800); outputs
    // off the block of four (37, 5, 67) and on it (4). 37 and 67 outputs split across threads.
    public static TheoryData<int, int, bool> Shapes => Int8MatrixTests.Shapes;

    // 300 rows of 800 inputs are more than one of the kernel's L2-sized chunks of rows; from
    // WidenedFromRows rows the product widens the weights and runs MKL's float32 GEMM instead.
    private static readonly int[] RowCounts = [1, 2, 3, 33, Bf16Matrix.WidenedFromRows, 300];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Product_is_x_times_the_weights_rounded_to_bfloat16(int inputs, int outputs, bool storedAsOutByIn)
    {
        var generator = manual_seed(inputs * 7 + outputs);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using Tensor stored = Int8MatrixTests.Stored(weight, storedAsOutByIn);
        using Bf16Matrix matrix = Bf16Matrix.Convert(stored, storedAsOutByIn);
        using Tensor rounded = TorchBf16(weight);
        using Tensor bias = randn([outputs], generator: generator);

        foreach (int rows in RowCounts)
        {
            using Tensor x = randn([rows, inputs], generator: generator);                         // (rows, in)
            foreach (Tensor? b in new[] { null, bias })
            {
                using Tensor expected = Int8MatrixTests.ReferenceProduct(x, rounded, b);           // (rows, out)
                using Tensor actual = matrix.Multiply(x, b);
                Assert.Equal([rows, (long)outputs], actual.shape);
                // Only float32 rounding in a different summation order remains: measured at most
                // 3e-7 of the largest output; 1e-5 is far from that and far below the 2^-9 relative
                // step of bfloat16, so reading unrounded or misplaced weights would fail.
                double error = Int8MatrixTests.RelativeError(actual, expected);
                Assert.True(error < 1e-5, $"{rows} rows, bias {b is not null}: max |error| is {error:E2} of max |product|");
            }
        }
    }

    [Fact]
    public void A_long_prompt_over_a_matrix_larger_than_the_widening_slice_is_multiplied_slice_by_slice()
    {
        // 5,301 outputs of 800 inputs are more than one 4M-float slice of widened weights: a full slice, then
        // 61 outputs ending in one outside the blocks of four.
        const int inputs = 800, outputs = 5301;
        var generator = manual_seed(11);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using Bf16Matrix matrix = Bf16Matrix.Convert(weight, storedAsOutByIn: true);
        using Tensor rounded = TorchBf16(weight);
        using Tensor bias = randn([outputs], generator: generator);
        using Tensor x = randn([Bf16Matrix.WidenedFromRows + 3, inputs], generator: generator);  // (rows, in)

        foreach (Tensor? b in new[] { null, bias })
        {
            using Tensor expected = Int8MatrixTests.ReferenceProduct(x, rounded, b);
            using Tensor actual = matrix.Multiply(x, b);
            double error = Int8MatrixTests.RelativeError(actual, expected);
            Assert.True(error < 1e-5, $"bias {b is not null}: max |error| is {error:E2} of max |product|");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Dequantize_is_torch_bfloat16_rounding(int inputs, int outputs, bool storedAsOutByIn)
    {
        var generator = manual_seed(inputs + 3 * outputs);
        using Tensor weight = randn([outputs, inputs], generator: generator);                     // (out, in)
        using Tensor stored = Int8MatrixTests.Stored(weight, storedAsOutByIn);
        using Bf16Matrix matrix = Bf16Matrix.Convert(stored, storedAsOutByIn);

        using Tensor expected = TorchBf16(weight);
        using Tensor actual = matrix.Dequantize()!;

        Assert.Equal([outputs, (long)inputs], actual.shape);
        long wrong = actual.ne(expected).sum().item<long>();
        Assert.True(wrong == 0, $"{wrong} weights differ from torch's bfloat16 rounding");
        // The rounding is real: randn values are almost never bfloat16 already.
        Assert.True(weight.ne(expected).any().item<bool>());
    }

    [Fact]
    public void FromSingle_rounds_edge_values_as_torch_does()
    {
        float[] values =
        [
            0f, -0f,
            float.Epsilon, -float.Epsilon,                                   // smallest subnormal
            Bits(0x007FFFFF), Bits(0x807FFFFF),                              // largest subnormal (rounds up to the smallest normal)
            Bits(0x00008000), Bits(0x00018000),                              // subnormal ties: to even (down, then up)
            Bits(0x00400000),
            float.PositiveInfinity, float.NegativeInfinity,
            float.MaxValue, -float.MaxValue,                                 // round up to infinity
            Bits(0x7F7F8000), Bits(0x7F7E8000),                              // ties just below the largest float
            float.MinValue, Bits(0x00800000),                                // smallest normal
            1f,
            Bits(0x3F808000),                                                // 1 + 2^-8: halfway between 1 and 1 + 2^-7, to even (down)
            Bits(0x3F818000),                                                // halfway between 1 + 2^-7 and 1 + 2^-6, to even (up)
            Bits(0x3F807FFF), Bits(0x3F808001),                              // either side of a tie
            Bits(0xBF808000), Bits(0xBF818000),                              // the same ties, negative
            Bits(0x4B7FFFFF), Bits(0x3EAAAAAB), 65504f, 1e-38f, -3.14159f,
        ];

        AssertMatchesTorch(values);
    }

    [Fact]
    public void FromSingle_rounds_random_values_as_torch_does()
    {
        var random = new Random(18);
        var values = new List<float>();
        // Every bit pattern but NaN's: all exponents, subnormals included, and random low halves that hit ties rarely ...
        while (values.Count < 100_000)
        {
            float value = Bits((uint)random.NextInt64(0, 1L << 32));
            if (!float.IsNaN(value))
            {
                values.Add(value);
            }
        }
        // ... so also values whose low half is exactly 0x8000 (a tie) or one either side of it.
        for (int i = 0; i < 30_000; i++)
        {
            uint high = (uint)random.Next(0, 1 << 16) << 16;
            float value = Bits(high | (uint)(0x7FFF + i % 3));
            if (!float.IsNaN(value))
            {
                values.Add(value);
            }
        }

        AssertMatchesTorch([.. values]);
    }

    private static void AssertMatchesTorch(float[] values)
    {
        using Tensor source = tensor(values);
        using Tensor expected = TorchBf16(source);
        float[] torchValues = expected.data<float>().ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            uint ours = BitConverter.SingleToUInt32Bits(Bf16Kernels.ToSingle(Bf16Kernels.FromSingle(values[i])));
            uint theirs = BitConverter.SingleToUInt32Bits(torchValues[i]);
            Assert.True(ours == theirs,
                $"{values[i]:R} (0x{BitConverter.SingleToUInt32Bits(values[i]):X8}): ours 0x{ours:X8}, torch 0x{theirs:X8}");
        }
    }

    /// <summary>torch's float32 → bfloat16 → float32 (the widening is exact).</summary>
    internal static Tensor TorchBf16(Tensor values)
    {
        using Tensor bf16 = values.to(ScalarType.BFloat16);
        return bf16.to(ScalarType.Float32);
    }

    private static float Bits(uint bits) => BitConverter.UInt32BitsToSingle(bits);
}
