#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// Marks GLIBCXX version requirements that the system libstdc++ cannot satisfy as weak, in a copy
// of a native library produced by this build. See LibTorchSharpCompat.targets for the reason.
public sealed class WeakenMissingGlibcxxVersions : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

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

        foreach (ITaskItem item in Libraries)
        {
            string path = item.GetMetadata("FullPath");
            byte[] image = File.ReadAllBytes(path);
            List<string> weakened = WeakenRequirements(image, version => !Contains(systemBytes, Encoding.ASCII.GetBytes(version + "\0")));
            if (weakened.Count == 0)
            {
                continue;
            }
            // Write a new file rather than writing through: the output copy may share an inode
            // with the package cache if the copy was ever made as a link.
            string temporary = path + ".patching";
            File.WriteAllBytes(temporary, image);
            File.Delete(path);
            File.Move(temporary, path);
            Log.LogMessage(MessageImportance.High,
                $"{Path.GetFileName(path)}: marked {string.Join(", ", weakened)} weak ({systemLibrary} lacks them)");
        }
        return true;
    }

    /// <summary>Sets VER_FLG_WEAK on each GLIBCXX requirement the predicate calls missing; returns their names.</summary>
    private static List<string> WeakenRequirements(byte[] image, Func<string, bool> isMissing)
    {
        var weakened = new List<string>();
        bool isElf64LittleEndian = image.Length > 64 && image[0] == 0x7f && image[1] == (byte)'E'
            && image[2] == (byte)'L' && image[3] == (byte)'F' && image[4] == 2 && image[5] == 1;
        if (!isElf64LittleEndian)
        {
            return weakened;
        }

        long sectionHeaderOffset = BitConverter.ToInt64(image, 0x28);
        int sectionHeaderSize = BitConverter.ToUInt16(image, 0x3A);
        int sectionCount = BitConverter.ToUInt16(image, 0x3C);
        for (int section = 0; section < sectionCount; section++)
        {
            long header = sectionHeaderOffset + (long)section * sectionHeaderSize;
            if (BitConverter.ToUInt32(image, (int)header + 4) != ShtGnuVerneed)
            {
                continue;
            }
            long verneedOffset = BitConverter.ToInt64(image, (int)header + 0x18);
            int linkedStringTable = (int)BitConverter.ToUInt32(image, (int)header + 0x28);
            int verneedCount = (int)BitConverter.ToUInt32(image, (int)header + 0x2C);
            long stringTableHeader = sectionHeaderOffset + (long)linkedStringTable * sectionHeaderSize;
            long stringTableOffset = BitConverter.ToInt64(image, (int)stringTableHeader + 0x18);

            long verneed = verneedOffset;
            for (int need = 0; need < verneedCount; need++)
            {
                // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
                int auxCount = BitConverter.ToUInt16(image, (int)verneed + 2);
                string file = ReadString(image, stringTableOffset + BitConverter.ToUInt32(image, (int)verneed + 4));
                long aux = verneed + BitConverter.ToUInt32(image, (int)verneed + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
                    string version = ReadString(image, stringTableOffset + BitConverter.ToUInt32(image, (int)aux + 8));
                    ushort flags = BitConverter.ToUInt16(image, (int)aux + 4);
                    if (file.StartsWith("libstdc++", StringComparison.Ordinal)
                        && version.StartsWith("GLIBCXX_", StringComparison.Ordinal)
                        && (flags & VerFlagWeak) == 0 && isMissing(version))
                    {
                        BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(image, (int)aux + 4);
                        weakened.Add(version);
                    }
                    aux += BitConverter.ToUInt32(image, (int)aux + 12);
                }
                verneed += BitConverter.ToUInt32(image, (int)verneed + 12);
            }
        }
        return weakened;
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

    private static bool Contains(byte[] haystack, byte[] needle)
    {
        // Inline tasks compile against netstandard, which has no span search.
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
