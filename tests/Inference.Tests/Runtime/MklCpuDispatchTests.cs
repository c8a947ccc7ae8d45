using System.Runtime.CompilerServices;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Runtime;

public sealed class MklCpuDispatchTests
{
#pragma warning disable CA2255 // MKL picks its kernels once per process, at its first product: this runs before any test's.
    [ModuleInitializer]
    internal static void ChooseMklKernelsBeforeAnyTest() => MklCpuDispatch.EnsureApplied();
#pragma warning restore CA2255

    private const string OtherMklVersion =
        "Intel(R) oneAPI Math Kernel Library Version 2025.0-Product Build 20241008 for Intel(R) 64 architecture applications";

    private const string Verified = MklCpuDispatch.VerifiedMklVersion;

    // processor, CPUID vendor, x86-64 Linux, AVX2 and FMA, the MKL libtorch links (null: none), outcome
    [Theory]
    [InlineData("AMD EPYC with AVX-512, the verified MKL", "AuthenticAMD", true, true, Verified, MklDispatchOutcome.VendorCheckBypassed)]
    [InlineData("AMD Ryzen with AVX2, the verified MKL", "AuthenticAMD", true, true, Verified, MklDispatchOutcome.VendorCheckBypassed)]
    [InlineData("Hygon Dhyana, the verified MKL", "HygonGenuine", true, true, Verified, MklDispatchOutcome.VendorCheckBypassed)]
    [InlineData("AMD EPYC, another MKL: skipped", "AuthenticAMD", true, true, OtherMklVersion, MklDispatchOutcome.OtherMklVersion)]
    [InlineData("AMD EPYC, a libtorch without MKL", "AuthenticAMD", true, true, null, MklDispatchOutcome.NotRecognized)]
    [InlineData("Intel Xeon with AVX-512: MKL picks its best itself", "GenuineIntel", true, true, Verified, MklDispatchOutcome.NotNeeded)]
    [InlineData("Intel Xeon, another MKL", "GenuineIntel", true, true, OtherMklVersion, MklDispatchOutcome.NotNeeded)]
    [InlineData("AMD Opteron without AVX2: no fast kernels to reach", "AuthenticAMD", true, false, Verified, MklDispatchOutcome.NotNeeded)]
    [InlineData("AMD EPYC under Windows: not where the bypass was read", "AuthenticAMD", false, true, Verified, MklDispatchOutcome.NotNeeded)]
    [InlineData("ARM (Graviton, Apple): no MKL", "", false, false, null, MklDispatchOutcome.NotNeeded)]
    public void EachProcessorGetsTheBypassOnlyWhereMklWouldRunItsGenericKernels(
        string processor, string vendor, bool isX64Linux, bool hasAvx2AndFma, string? linkedMklVersion, MklDispatchOutcome expected)
    {
        bool versionRead = false;

        MklDispatchOutcome outcome = MklCpuDispatch.Decide(new HostProcessor(vendor, isX64Linux, hasAvx2AndFma), () =>
        {
            versionRead = true;
            return linkedMklVersion;
        });

        Assert.True(expected == outcome, $"{processor}: expected {expected}, got {outcome}");
        Assert.True(versionRead || expected == MklDispatchOutcome.NotNeeded, $"{processor}: the MKL version decides, so it must be read");
    }

    [Fact]
    public void TheLinkedMklIsTheOneWhoseVendorCheckWasRead()
    {
        // A libtorch update that brings another MKL turns the bypass off (OtherMklVersion); this
        // says so here, so that its two functions are read again rather than the speed lost quietly.
        Assert.Equal(MklCpuDispatch.VerifiedMklVersion, MklCpuDispatch.LinkedMklVersion());
    }

    [Fact]
    public void OnThisMachineMklChoosesItsKernelsByInstructionSetBeforeTheFirstProduct()
    {
        MklDispatchOutcome outcome = MklCpuDispatch.EnsureApplied();

        Assert.Equal(outcome, MklCpuDispatch.EnsureApplied());
        if (Environment.GetEnvironmentVariable(MklCpuDispatch.KeepVendorCheckVariable) == "1")
        {
            Assert.Equal(MklDispatchOutcome.Disabled, outcome);
            return;
        }
        // The table above, for this machine: the decision reached here must also have been carried
        // out (the functions recognized, the answers written before MKL's first product).
        Assert.Equal(MklCpuDispatch.Decide(HostProcessor.Current, MklCpuDispatch.LinkedMklVersion), outcome);
        Assert.StartsWith(outcome.ToString(), MklCpuDispatch.Describe(), StringComparison.Ordinal);
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
}
