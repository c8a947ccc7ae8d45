using System.Text;

namespace LlmServer.Training.Tokenization;

/// <summary>
/// A trained byte-level BPE tokenizer: the token strings by id (in GPT-2's byte-to-unicode alphabet)
/// and the merges in rank order. <see cref="Save"/> writes the two files GPT-2 ships, which
/// <see cref="LlmServer.Inference.Tokenization.Gpt2Tokenizer"/> and Hugging Face's GPT2Tokenizer load.
/// </summary>
public sealed class ByteLevelBpeVocabulary
{
    public const string EndOfTextToken = "<|endoftext|>";

    internal ByteLevelBpeVocabulary(IReadOnlyList<string> tokens, IReadOnlyList<(string Left, string Right)> merges)
    {
        Tokens = tokens;
        Merges = merges;
    }

    /// <summary>Token strings indexed by id: 256 bytes, learned tokens, then <see cref="EndOfTextToken"/>.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Merges in rank order; merge i created token 256 + i, as in GPT-2's own files.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    /// <summary>The last id; equals the requested VocabularySize - 1 unless training stopped early.</summary>
    public int EndOfTextId => Tokens.Count - 1;

    /// <summary>Writes vocab.json and merges.txt into <paramref name="directory"/> (created if missing).</summary>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory.CreateDirectory(directory);
        var utf8WithoutBom = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
        File.WriteAllText(Path.Combine(directory, "vocab.json"), VocabularyJson(), utf8WithoutBom);
        File.WriteAllText(Path.Combine(directory, "merges.txt"), MergesText(), utf8WithoutBom);
    }

    /// <summary>
    /// One line laid out like GPT-2's vocab.json (<c>{"!": 0, "\"": 1, ...}</c>, non-ASCII written as
    /// is), so a diff against it is meaningful. Written by hand because System.Text.Json escapes every
    /// non-ASCII character and has no ": " / ", " separators. Byte-level strings hold no control
    /// characters, so only the quote and the backslash need escaping.
    /// </summary>
    private string VocabularyJson()
    {
        var json = new StringBuilder("{");
        for (int id = 0; id < Tokens.Count; id++)
        {
            json.Append(id == 0 ? "\"" : ", \"");
            foreach (char character in Tokens[id])
            {
                json.Append(character is '"' or '\\' ? "\\" : "").Append(character);
            }

            json.Append("\": ").Append(id);
        }

        return json.Append('}').ToString();
    }

    /// <summary>GPT-2's layout: a version header, then "left right" per line; byte-level strings hold no spaces.</summary>
    private string MergesText()
    {
        var text = new StringBuilder("#version: 0.2\n");
        foreach ((string left, string right) in Merges)
        {
            text.Append(left).Append(' ').Append(right).Append('\n');
        }

        return text.ToString();
    }
}
