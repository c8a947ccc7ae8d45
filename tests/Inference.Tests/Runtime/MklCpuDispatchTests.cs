using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Runtime;

public sealed class MklCpuDispatchTests
{
#pragma warning disable CA2255 // MKL picks its kernels once per process, at its first product: this runs before any test's.
    [ModuleInitializer]
    internal static void ChooseMklKernelsBeforeAnyTest() => MklCpuDispatch.EnsureApplied();
#pragma warning restore CA2255

    [Fact]
    public void MklChoosesItsKernelsByInstructionSetBeforeTheFirstProduct()
    {
        MklDispatchOutcome outcome = MklCpuDispatch.EnsureApplied();

        Assert.Equal(outcome, MklCpuDispatch.EnsureApplied());
        Assert.Equal(ExpectedOutcome(), outcome);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(32)]
    [InlineData(256)]
    public void ProductsWithTheChosenKernelsMatchDoublePrecision(int rows)
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(7);
        Tensor x = randn([rows, 768], generator: generator);                        // (N, in)
        Tensor weight = randn([768, 2304], generator: generator) * 0.02f;           // (in, out)

        Tensor product = x.mm(weight);                                               // (N, out)
        Tensor reference = x.to(ScalarType.Float64).mm(weight.to(ScalarType.Float64)); // (N, out)

        double worst = (product.to(ScalarType.Float64) - reference).abs().max().item<double>();
        Assert.True(worst < 1e-4, $"float32 product differs from float64 by {worst}");
    }

    private static MklDispatchOutcome ExpectedOutcome()
    {
        if (Environment.GetEnvironmentVariable(MklCpuDispatch.KeepVendorCheckVariable) == "1")
        {
            return MklDispatchOutcome.Disabled;
        }
        bool amdLike = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            && Avx2.IsSupported && Fma.IsSupported && !IsIntel();
        return amdLike ? MklDispatchOutcome.VendorCheckBypassed : MklDispatchOutcome.NotNeeded;
    }

    private static bool IsIntel()
    {
        (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return MemoryMarshal.AsBytes(vendor).SequenceEqual("GenuineIntel"u8);
    }
}
