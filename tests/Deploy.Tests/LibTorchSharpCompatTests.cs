using System.Reflection;

namespace LlmServer.Deploy.Tests;

/// <summary>
/// The build's libstdc++ patch (build/WeakenMissingGlibcxxVersions.cs) over TorchSharp's own
/// libLibTorchSharp.so, with the system libstdc++ stood in for by the versions it defines.
/// </summary>
public sealed class LibTorchSharpCompatTests
{
    private static readonly string PackagedLibrary = typeof(LibTorchSharpCompatTests).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "PackagedLibTorchSharp").Value!;

    // Debian 12's libstdc++ (GCC 12) defines GLIBCXX up to 3.4.30; Ubuntu 20.04's (GCC 10) up to 3.4.28.
    // (GLIBCXX_3.4 itself is 3.4.0.)
    private static Func<string, bool> MissingAbove(int lastPatch) =>
        version => version.Split('.') is [_, _, string patch] && int.Parse(patch, System.Globalization.CultureInfo.InvariantCulture) > lastPatch;

    private static readonly IReadOnlyCollection<string> NothingKnownUnused = [];

    [Fact]
    public void The_packaged_library_needs_GLIBCXX_3_4_32_only_for_the_never_called_stream_initializer()
    {
        GlibcxxRequirement requirement = Assert.Single(
            GlibcxxWeakening.ReadRequirements(File.ReadAllBytes(PackagedLibrary)), r => r.Version == "GLIBCXX_3.4.32");

        Assert.Equal(["_ZSt21ios_base_library_initv"], requirement.Symbols);
    }

    [Fact]
    public void On_Debian_12_only_GLIBCXX_3_4_32_is_marked_weak_and_nothing_else_in_the_library_changes()
    {
        byte[] original = File.ReadAllBytes(PackagedLibrary);
        byte[] image = (byte[])original.Clone();

        GlibcxxWeakening weakening = GlibcxxWeakening.Plan(image, MissingAbove(30), GlibcxxWeakening.NeverCalledSymbols);
        weakening.ApplyTo(image);

        Assert.Empty(weakening.Refused);
        Assert.Equal(["GLIBCXX_3.4.32"], weakening.Weakened.Select(w => w.Version));
        int[] changedBytes = [.. Enumerable.Range(0, image.Length).Where(i => image[i] != original[i])];
        Assert.Equal([weakening.Weakened[0].FlagsOffset], changedBytes); // vna_flags' low byte: VER_FLG_WEAK (2)
        Assert.Equal(0x2, image[changedBytes[0]] & ~original[changedBytes[0]]);
        Assert.DoesNotContain(GlibcxxWeakening.ReadRequirements(image), r => r.Version == "GLIBCXX_3.4.32");
    }

    [Fact]
    public void Where_the_system_has_every_version_nothing_is_weakened()
    {
        GlibcxxWeakening weakening = GlibcxxWeakening.Plan(File.ReadAllBytes(PackagedLibrary), MissingAbove(int.MaxValue - 1), GlibcxxWeakening.NeverCalledSymbols);

        Assert.Empty(weakening.Weakened);
        Assert.Empty(weakening.Refused);
    }

    [Fact]
    public void A_missing_version_that_a_symbol_not_known_unused_needs_is_refused_and_named_with_the_symbol()
    {
        byte[] original = File.ReadAllBytes(PackagedLibrary);
        byte[] image = (byte[])original.Clone();

        GlibcxxWeakening weakening = GlibcxxWeakening.Plan(image, MissingAbove(30), NothingKnownUnused);

        Assert.Empty(weakening.Weakened);
        GlibcxxRequirement refused = Assert.Single(weakening.Refused);
        Assert.Equal("GLIBCXX_3.4.32", refused.Version);
        Assert.Equal(["_ZSt21ios_base_library_initv"], refused.Symbols);
        string message = GlibcxxWeakening.RefusalMessage("libLibTorchSharp.so", "/usr/lib/libstdc++.so.6", refused);
        Assert.Contains("libLibTorchSharp.so needs GLIBCXX_3.4.32", message);
        Assert.Contains("_ZSt21ios_base_library_initv", message);
        Assert.Contains("NeverCalledSymbols in build/WeakenMissingGlibcxxVersions.cs", message);
        Assert.Throws<InvalidOperationException>(() => weakening.ApplyTo(image));
        Assert.Equal(original, image);
    }

    [Fact]
    public void On_an_older_libstdcxx_the_versions_that_called_symbols_need_are_refused_and_the_library_is_left_as_it_is()
    {
        byte[] original = File.ReadAllBytes(PackagedLibrary);
        byte[] image = (byte[])original.Clone();

        GlibcxxWeakening weakening = GlibcxxWeakening.Plan(image, MissingAbove(28), GlibcxxWeakening.NeverCalledSymbols);

        // 3.4.32 alone could be weakened, but the library would still fail: it calls into 3.4.29 and 3.4.30.
        Assert.Equal(["GLIBCXX_3.4.29", "GLIBCXX_3.4.30"], weakening.Refused.Select(r => r.Version).Order());
        Assert.Contains("_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE",
            weakening.Refused.Single(r => r.Version == "GLIBCXX_3.4.30").Symbols);
        Assert.Contains("_ZSt28__throw_bad_array_new_lengthv", weakening.Refused.Single(r => r.Version == "GLIBCXX_3.4.29").Symbols);
        Assert.Throws<InvalidOperationException>(() => weakening.ApplyTo(image));
        Assert.Equal(original, image);
    }
}
