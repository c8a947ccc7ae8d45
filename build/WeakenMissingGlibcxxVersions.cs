#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// Marks GLIBCXX version requirements that the system libstdc++ cannot satisfy as weak, in a copy
// of a native library produced by this build, when nothing but symbols known never to be called
// needs them; fails the build otherwise. See LibTorchSharpCompat.targets for the reason.
// Inline tasks compile against netstandard: no spans, records or init accessors in this file.
public sealed class WeakenMissingGlibcxxVersions : Microsoft.Build.Utilities.Task
{
    private static readonly string[] SystemLibstdcxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6",
        "/usr/lib/libstdc++.so.6",
    };

    [Required]
    public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();

    public override bool Execute()
    {
        string? systemLibrary = Array.Find(SystemLibstdcxxCandidates, File.Exists);
        if (systemLibrary is null)
        {
            Log.LogMessage(MessageImportance.Low, "No system libstdc++ found; native libraries left as they are.");
            return true;
        }
        byte[] systemBytes = File.ReadAllBytes(systemLibrary);
        Func<string, bool> isMissing = version => !Contains(systemBytes, Encoding.ASCII.GetBytes(version + "\0"));

        foreach (ITaskItem item in Libraries)
        {
            string path = item.GetMetadata("FullPath");
            byte[] image = File.ReadAllBytes(path);
            GlibcxxWeakening weakening = GlibcxxWeakening.Plan(image, isMissing, GlibcxxWeakening.NeverCalledSymbols);
            if (weakening.Refused.Count > 0)
            {
                foreach (GlibcxxRequirement refused in weakening.Refused)
                {
                    Log.LogError(GlibcxxWeakening.RefusalMessage(Path.GetFileName(path), systemLibrary, refused));
                }
                continue;
            }
            if (weakening.Weakened.Count == 0)
            {
                continue;
            }
            weakening.ApplyTo(image);
            // Write a new file rather than writing through: the output copy may share an inode
            // with the package cache if the copy was ever made as a link.
            string temporary = path + ".patching";
            File.WriteAllBytes(temporary, image);
            File.Delete(path);
            File.Move(temporary, path);
            Log.LogMessage(MessageImportance.High,
                $"{Path.GetFileName(path)}: marked {string.Join(", ", weakening.Weakened.Select(w => w.Version))} weak "
                + $"({systemLibrary} lacks them; needed only by {string.Join(", ", weakening.Weakened.SelectMany(w => w.Symbols).Distinct())}, never called)");
        }
        return !Log.HasLoggedErrors;
    }

    private static bool Contains(byte[] haystack, byte[] needle)
    {
        for (int start = 0; start <= haystack.Length - needle.Length; start++)
        {
            int matched = 0;
            while (matched < needle.Length && haystack[start + matched] == needle[matched])
            {
                matched++;
            }
            if (matched == needle.Length)
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>One GLIBCXX version a library needs from libstdc++, and the dynamic symbols bound to it.</summary>
public sealed class GlibcxxRequirement
{
    public GlibcxxRequirement(string version, int flagsOffset, IReadOnlyList<string> symbols)
    {
        Version = version;
        FlagsOffset = flagsOffset;
        Symbols = symbols;
    }

    public string Version { get; }

    /// <summary>File offset of the requirement's vna_flags in .gnu.version_r.</summary>
    public int FlagsOffset { get; }

    /// <summary>The .dynsym entries whose .gnu.version entry names this requirement.</summary>
    public IReadOnlyList<string> Symbols { get; }
}

/// <summary>
/// Which missing GLIBCXX requirements of an ELF64 little-endian library may be marked weak: those
/// whose every symbol is known never to be called. The dynamic loader accepts a library whose
/// missing versions are all weak, and would still fail loudly if a symbol of such a version were
/// ever bound, so a wrong entry in <see cref="NeverCalledSymbols"/> shows as an error at the call,
/// not as wrong behaviour.
/// </summary>
public sealed class GlibcxxWeakening
{
    /// <summary>
    /// Symbols that libraries built by GCC 13 reference without calling, checked by hand (see each).
    /// </summary>
    public static readonly IReadOnlyCollection<string> NeverCalledSymbols = new HashSet<string>(StringComparer.Ordinal)
    {
        // std::ios_base_library_init() (GLIBCXX_3.4.32). GCC 13's <iostream> no longer constructs a
        // static ios_base::Init in every file that includes it; it emits only
        // `.globl _ZSt21ios_base_library_initv`, an undefined reference with no call, so that the
        // loader insists on a libstdc++ that constructs the standard streams itself. With an older
        // libstdc++ the streams are still constructed: libtorch, loaded with libLibTorchSharp, was
        // built with the older header and carries those static ios_base::Init objects.
        // `objdump -d libLibTorchSharp.so | grep ios_base_library_init` finds no call.
        "_ZSt21ios_base_library_initv",
    };

    private const uint ShtDynsym = 11;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;
    private const ushort VersymHidden = 0x8000;

    private GlibcxxWeakening(List<GlibcxxRequirement> weakened, List<GlibcxxRequirement> refused)
    {
        Weakened = weakened;
        Refused = refused;
    }

    /// <summary>Missing requirements that only never-called symbols need: safe to mark weak.</summary>
    public IReadOnlyList<GlibcxxRequirement> Weakened { get; }

    /// <summary>Missing requirements that some symbol outside the never-called list needs.</summary>
    public IReadOnlyList<GlibcxxRequirement> Refused { get; }

    /// <summary>Reads the library's GLIBCXX requirements (without changing it) and sorts the missing ones.</summary>
    public static GlibcxxWeakening Plan(byte[] image, Func<string, bool> isMissing, IReadOnlyCollection<string> neverCalledSymbols)
    {
        var weakened = new List<GlibcxxRequirement>();
        var refused = new List<GlibcxxRequirement>();
        foreach (GlibcxxRequirement requirement in ReadRequirements(image))
        {
            if (!isMissing(requirement.Version))
            {
                continue;
            }
            List<string> mayBeCalled = requirement.Symbols.Where(s => !neverCalledSymbols.Contains(s)).ToList();
            if (mayBeCalled.Count == 0)
            {
                weakened.Add(requirement);
            }
            else
            {
                refused.Add(new GlibcxxRequirement(requirement.Version, requirement.FlagsOffset, mayBeCalled));
            }
        }
        return new GlibcxxWeakening(weakened, refused);
    }

    /// <summary>Sets VER_FLG_WEAK on every requirement in <see cref="Weakened"/>; nothing else in the image changes.</summary>
    public void ApplyTo(byte[] image)
    {
        if (Refused.Count > 0)
        {
            throw new InvalidOperationException("a library with refused requirements would fail at a call; it is left as it is");
        }
        foreach (GlibcxxRequirement requirement in Weakened)
        {
            ushort flags = BitConverter.ToUInt16(image, requirement.FlagsOffset);
            BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(image, requirement.FlagsOffset);
        }
    }

    public static string RefusalMessage(string library, string systemLibrary, GlibcxxRequirement refused) =>
        $"{library} needs {refused.Version}, which {systemLibrary} does not define, for "
        + $"{string.Join(", ", refused.Symbols)}: not known to be unused, so the requirement cannot be "
        + "marked weak and the library would not load on this system. Build with a newer libstdc++ "
        + "(a newer distribution or GCC), or, once the symbol is verified never to be called, add it to "
        + "NeverCalledSymbols in build/WeakenMissingGlibcxxVersions.cs.";

    /// <summary>Every GLIBCXX requirement on libstdc++ that is not weak yet, with its symbols.</summary>
    public static List<GlibcxxRequirement> ReadRequirements(byte[] image)
    {
        var requirements = new List<GlibcxxRequirement>();
        bool isElf64LittleEndian = image.Length > 64 && image[0] == 0x7f && image[1] == (byte)'E'
            && image[2] == (byte)'L' && image[3] == (byte)'F' && image[4] == 2 && image[5] == 1;
        if (!isElf64LittleEndian)
        {
            return requirements;
        }

        // Elf64_Shdr: sh_name u32, sh_type u32, sh_flags u64, sh_addr u64, sh_offset u64 (0x18),
        // sh_size u64 (0x20), sh_link u32 (0x28), sh_info u32 (0x2C), sh_addralign u64, sh_entsize u64 (0x38)
        long sectionHeaderOffset = BitConverter.ToInt64(image, 0x28);
        int sectionHeaderSize = BitConverter.ToUInt16(image, 0x3A);
        int sectionCount = BitConverter.ToUInt16(image, 0x3C);
        int Header(int section) => checked((int)(sectionHeaderOffset + (long)section * sectionHeaderSize));
        uint TypeOf(int section) => BitConverter.ToUInt32(image, Header(section) + 4);
        int OffsetOf(int section) => checked((int)BitConverter.ToInt64(image, Header(section) + 0x18));
        long SizeOf(int section) => BitConverter.ToInt64(image, Header(section) + 0x20);
        int LinkOf(int section) => (int)BitConverter.ToUInt32(image, Header(section) + 0x28);

        int dynsym = Enumerable.Range(0, sectionCount).FirstOrDefault(s => TypeOf(s) == ShtDynsym);
        int versym = Enumerable.Range(0, sectionCount).FirstOrDefault(s => TypeOf(s) == ShtGnuVersym);
        int verneed = Enumerable.Range(0, sectionCount).FirstOrDefault(s => TypeOf(s) == ShtGnuVerneed);
        if (dynsym == 0 || versym == 0 || verneed == 0)
        {
            return requirements;
        }

        // Which version index each dynamic symbol is bound to: .gnu.version holds one u16 per
        // .dynsym entry (Elf64_Sym: st_name u32, st_info, st_other, st_shndx u16, st_value, st_size: 24 bytes).
        var symbolsByVersionIndex = new Dictionary<int, List<string>>();
        int symbolCount = (int)(SizeOf(dynsym) / 24);
        int symbolNames = OffsetOf(LinkOf(dynsym));
        for (int symbol = 1; symbol < symbolCount; symbol++)
        {
            int versionIndex = BitConverter.ToUInt16(image, OffsetOf(versym) + 2 * symbol) & ~VersymHidden;
            string name = ReadString(image, symbolNames + BitConverter.ToUInt32(image, OffsetOf(dynsym) + 24 * symbol));
            if (!symbolsByVersionIndex.TryGetValue(versionIndex, out List<string>? names))
            {
                symbolsByVersionIndex[versionIndex] = names = new List<string>();
            }
            names.Add(name);
        }

        int versionNames = OffsetOf(LinkOf(verneed));
        int needCount = (int)BitConverter.ToUInt32(image, Header(verneed) + 0x2C);
        int need = OffsetOf(verneed);
        for (int n = 0; n < needCount; n++)
        {
            // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
            int auxCount = BitConverter.ToUInt16(image, need + 2);
            string file = ReadString(image, versionNames + BitConverter.ToUInt32(image, need + 4));
            int aux = need + (int)BitConverter.ToUInt32(image, need + 8);
            for (int a = 0; a < auxCount; a++)
            {
                // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16 (the version index), vna_name u32, vna_next u32
                ushort flags = BitConverter.ToUInt16(image, aux + 4);
                int versionIndex = BitConverter.ToUInt16(image, aux + 6);
                string version = ReadString(image, versionNames + BitConverter.ToUInt32(image, aux + 8));
                if (file.StartsWith("libstdc++", StringComparison.Ordinal)
                    && version.StartsWith("GLIBCXX_", StringComparison.Ordinal)
                    && (flags & VerFlagWeak) == 0)
                {
                    symbolsByVersionIndex.TryGetValue(versionIndex, out List<string>? symbols);
                    requirements.Add(new GlibcxxRequirement(version, aux + 4, symbols ?? new List<string>()));
                }
                aux += (int)BitConverter.ToUInt32(image, aux + 12);
            }
            need += (int)BitConverter.ToUInt32(image, need + 12);
        }
        return requirements;
    }

    private static string ReadString(byte[] image, long offset)
    {
        int end = (int)offset;
        while (image[end] != 0)
        {
            end++;
        }
        return Encoding.ASCII.GetString(image, (int)offset, end - (int)offset);
    }
}
