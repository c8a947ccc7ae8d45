using System.Globalization;
using System.Text;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// tokenizer.json's <c>decoder</c> for SentencePiece-style files, step by step as Hugging Face tokenizers runs
/// it over the token strings: Llama 2 and Mistral's Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0),
/// or a Metaspace decoder. Also gives each token's bytes on their own (<see cref="TokenBytes"/>), which is what
/// a stream concatenates: the same text except for what the decoder does across tokens (Strip's leading space,
/// Metaspace's first token) and U+FFFD placement in malformed byte runs.
/// </summary>
internal sealed class SentencePieceDecoder
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly IReadOnlyList<Step> _steps;

    public SentencePieceDecoder(IReadOnlyList<Step> steps)
    {
        _steps = steps;
    }

    public abstract record Step;

    /// <summary>Every <paramref name="Pattern"/> (a literal string) in each token becomes <paramref name="Content"/>.</summary>
    public sealed record Replace(string Pattern, string Content) : Step;

    /// <summary>Runs of &lt;0xNN&gt; tokens become their UTF-8 text, or one U+FFFD per token when the run is not valid UTF-8.</summary>
    public sealed record ByteFallback : Step;

    /// <summary>All tokens become one.</summary>
    public sealed record Fuse : Step;

    /// <summary>Removes up to <paramref name="Start"/> leading and <paramref name="Stop"/> trailing <paramref name="Content"/> from each token.</summary>
    public sealed record Strip(char Content, int Start, int Stop) : Step;

    /// <summary><paramref name="Replacement"/> becomes a space; in the first token it is dropped unless nothing was prepended.</summary>
    public sealed record Metaspace(char Replacement, bool DropInFirstToken) : Step;

    /// <summary>The bytes token <paramref name="token"/> (a vocabulary string) stands for on its own.</summary>
    public byte[] TokenBytes(string token)
    {
        if (_steps.Any(step => step is ByteFallback) && TryParseByte(token, out byte value))
        {
            return [value];
        }

        foreach (Step step in _steps)
        {
            token = step switch
            {
                Replace replace => token.Replace(replace.Pattern, replace.Content, StringComparison.Ordinal),
                Metaspace metaspace => token.Replace(metaspace.Replacement, ' '),
                _ => token,
            };
        }

        return Encoding.UTF8.GetBytes(token);
    }

    /// <summary>Hugging Face's <c>decode</c> of these token strings (added tokens as their content).</summary>
    public string Decode(List<string> tokens)
    {
        foreach (Step step in _steps)
        {
            tokens = step switch
            {
                Replace replace => tokens.ConvertAll(token => token.Replace(replace.Pattern, replace.Content, StringComparison.Ordinal)),
                ByteFallback => DecodeByteRuns(tokens),
                Fuse => [string.Concat(tokens)],
                Strip strip => tokens.ConvertAll(token => StripToken(token, strip)),
                Metaspace metaspace => tokens.Select((token, index) => index == 0 && metaspace.DropInFirstToken
                    ? token.Replace(metaspace.Replacement.ToString(), "", StringComparison.Ordinal)
                    : token.Replace(metaspace.Replacement, ' ')).ToList(),
                _ => throw new InvalidOperationException($"decoder step {step} has no implementation"),
            };
        }

        return string.Concat(tokens);
    }

    private static List<string> DecodeByteRuns(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var run = new List<byte>();
        foreach (string token in tokens)
        {
            if (TryParseByte(token, out byte value))
            {
                run.Add(value);
                continue;
            }

            FlushRun();
            result.Add(token);
        }

        FlushRun();
        return result;

        void FlushRun()
        {
            if (run.Count == 0)
            {
                return;
            }

            try
            {
                result.Add(StrictUtf8.GetString(run.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                result.AddRange(Enumerable.Repeat("\uFFFD", run.Count));
            }

            run.Clear();
        }
    }

    private static string StripToken(string token, Strip strip)
    {
        int start = 0;
        while (start < strip.Start && start < token.Length && token[start] == strip.Content)
        {
            start++;
        }

        int stop = token.Length;
        while (token.Length - stop < strip.Stop && stop > start && token[stop - 1] == strip.Content)
        {
            stop--;
        }

        return token[start..stop];
    }

    /// <summary>ByteFallback's test: exactly "&lt;0x" + two hex digits + "&gt;".</summary>
    private static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }
}
