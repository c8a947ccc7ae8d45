using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.Tokenization;

/// <summary>
/// SentencePiece-style tokenizer.json files (byte fallback, "▁" for spaces) against Data/mistral: Mistral 7B
/// v0.1's own file, in Llama 2's form (Prepend + Replace normalizer, no pre-tokenizer), and the same file
/// rewritten to the Metaspace form that Mistral v0.3 and legacy=False conversions use, and with its added tokens
/// marked normalized (matched in the normalized text, "<s>" as "▁<s>"). Expected values are
/// tokenizers.js' (Data/mistral/make_cases.mjs), which also reproduces transformers.js' own Mistral test ids,
/// and a second implementation's (mistral-tokenizer-js' test cases).
/// </summary>
public sealed class HuggingFaceTokenizerSentencePieceTests
{
    private static readonly string DataDirectory = Path.Combine(AppContext.BaseDirectory, "Tokenization", "Data", "mistral");

    private static readonly Lazy<HuggingFaceTokenizer> Legacy = new(() => HuggingFaceTokenizer.Load(DataDirectory));

    private static readonly Lazy<HuggingFaceTokenizer> Metaspace = new(() => LoadRewritten(json =>
    {
        // The rewrite make_cases.mjs' metaspaceVariant makes.
        json["normalizer"] = null;
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Metaspace",
            ["replacement"] = "\u2581",
            ["prepend_scheme"] = "first",
            ["split"] = false,
        };
    }));

    private static readonly Lazy<HuggingFaceTokenizer> NormalizedAddedTokens = new(() => LoadRewritten(json =>
    {
        // The rewrite make_cases.mjs' normalizedAddedTokensVariant makes.
        foreach (JsonNode? token in json["added_tokens"]!.AsArray())
        {
            token!["normalized"] = true;
        }
    }));

    private static HuggingFaceTokenizer Tokenizer(string variant) => variant switch
    {
        "legacy" => Legacy.Value,
        "metaspace" => Metaspace.Value,
        "normalized_added_tokens" => NormalizedAddedTokens.Value,
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };

    /// <summary>Loads Data/mistral's tokenizer.json changed by <paramref name="change"/>, from a temporary folder.</summary>
    private static HuggingFaceTokenizer LoadRewritten(Action<JsonObject> change)
    {
        string directory = Directory.CreateTempSubdirectory("sp-tokenizer-").FullName;
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(Path.Combine(DataDirectory, "tokenizer.json")))!.AsObject();
            change(json);
            File.WriteAllText(Path.Combine(directory, "tokenizer.json"), json.ToJsonString());
            File.Copy(Path.Combine(DataDirectory, "tokenizer_config.json"), Path.Combine(directory, "tokenizer_config.json"));
            return HuggingFaceTokenizer.Load(directory);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static JsonElement Cases()
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDirectory, "cases.json")));
        return document.RootElement.GetProperty("cases").Clone();
    }

    private static (string Text, JsonElement Expected) Case(string variant, string name)
    {
        JsonElement item = Cases().EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);
        return (item.GetProperty("text").GetString()!, item.GetProperty(variant));
    }

    private static int[] Ids(JsonElement element) => element.EnumerateArray().Select(id => id.GetInt32()).ToArray();

    public static TheoryData<string, string> TokenizerCases()
    {
        var data = new TheoryData<string, string>();
        foreach (string variant in new[] { "legacy", "metaspace", "normalized_added_tokens" })
        {
            foreach (JsonElement item in Cases().EnumerateArray())
            {
                data.Add(variant, item.GetProperty("name").GetString()!);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Encode_MatchesHuggingFace_WithAndWithoutSpecialTokens(string variant, string name)
    {
        (string text, JsonElement expected) = Case(variant, name);
        HuggingFaceTokenizer tokenizer = Tokenizer(variant);

        Assert.Equal(Ids(expected.GetProperty("ids")), tokenizer.Encode(text, addSpecialTokens: false));
        Assert.Equal(Ids(expected.GetProperty("ids_with_special")), tokenizer.Encode(text, addSpecialTokens: true));
        Assert.Equal(
            Ids(expected.GetProperty("ids_split_special")),
            tokenizer.Encode(text, addSpecialTokens: false, splitSpecialTokens: true, int.MaxValue, CancellationToken.None));
        Assert.InRange(tokenizer.MinTokenCount(text), 0, expected.GetProperty("ids").GetArrayLength());
    }

    [Fact]
    public void MinTokenCount_IsALowerBound_EvenForLiteralSpaceSymbols()
    {
        // "▁" typed into the text is 3 UTF-8 bytes, yet "▁▁▁▁..." tokens cover a run of them as they would spaces.
        string text = new('\u2581', 64);

        Assert.InRange(Legacy.Value.MinTokenCount(text), 0, Legacy.Value.Encode(text).Count);
        Assert.InRange(Metaspace.Value.MinTokenCount(text), 0, Metaspace.Value.Encode(text).Count);
        // Every character has its fallback bytes, so unk never fuses a run and the bound still means something.
        Assert.True(Legacy.Value.MinTokenCount(new string('a', 100_000)) > 1);
    }

    [Fact]
    public void MinTokenCount_WithoutByteFallback_AllowsOneFusedUnkForAnyRun()
    {
        // fuse_unk without byte fallback: a run of characters outside the vocabulary, however long, is one <unk>.
        HuggingFaceTokenizer tokenizer = LoadRewritten(json => json["model"]!["byte_fallback"] = false);
        string text = string.Concat(Enumerable.Repeat("\U0001F917", 1000));

        IReadOnlyList<int> ids = tokenizer.Encode(text);

        // "▁" (as the byte-fallback file starts the same text), then <unk> (id 0) for all 1000 emoji.
        Assert.Equal([Legacy.Value.Encode("\U0001F917")[0], 0], ids);
        Assert.InRange(tokenizer.MinTokenCount(text), 0, ids.Count);
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Decode_RunsTheDecoderChain_AsHuggingFace(string variant, string name)
    {
        (_, JsonElement expected) = Case(variant, name);
        int[] ids = Ids(expected.GetProperty("ids"));
        HuggingFaceTokenizer tokenizer = Tokenizer(variant);

        Assert.Equal(expected.GetProperty("decoded").GetString(), tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(expected.GetProperty("decoded_skip_special").GetString(), tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Stream_ConcatenatesToThePlainDecode_WhichIsTheTextAfterBos(string variant, string name)
    {
        // A stream follows the prompt, so a first "▁Hello" shows " Hello": HF's decode(BOS + ids) less BOS's text.
        (_, JsonElement expected) = Case(variant, name);
        int[] ids = Ids(expected.GetProperty("ids"));
        HuggingFaceTokenizer tokenizer = Tokenizer(variant);
        string afterBos = expected.GetProperty("decoded_after_bos").GetString()!;
        var detokenizer = new IncrementalDetokenizer(tokenizer);

        List<string> deltas = [.. ids.Select(detokenizer.Push), detokenizer.Flush()];

        Assert.Equal(afterBos, ((ITokenizer)tokenizer).Decode(ids));
        Assert.Equal(afterBos, string.Concat(deltas));
        // The fallback bytes of one character (an emoji is four <0xNN> tokens) are held back until it is whole.
        Assert.Equal(afterBos.Count(c => c == '\uFFFD'), deltas.Sum(delta => delta.Count(c => c == '\uFFFD')));
    }

    public static TheoryData<string> SecondWitnessCases()
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDirectory, "mistral_tokenizer_js_cases.json")));
        return new TheoryData<string>(document.RootElement.GetProperty("cases").EnumerateArray().Select(item => item.GetProperty("title").GetString()!));
    }

    [Theory]
    [MemberData(nameof(SecondWitnessCases))]
    public void Encode_MatchesASecondImplementation_OfMistralsTokenizer(string title)
    {
        // mistral-tokenizer-js' own test cases: merge order among equal ranks and runs of spaces, byte fallback of
        // characters of different UTF-8 lengths side by side, a page of text with IPA and emoji.
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDirectory, "mistral_tokenizer_js_cases.json")));
        JsonElement item = document.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("title").GetString() == title);
        string text = item.GetProperty("text").GetString()!;
        int[] ids = Ids(item.GetProperty("ids_with_special"));

        Assert.Equal(ids, Legacy.Value.Encode(text, addSpecialTokens: true));
        Assert.Equal(text, Legacy.Value.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void ChatPrompt_OfMistralInstruct_RendersAndEncodesAsTransformersJs()
    {
        // Mistral-7B-Instruct-v0.1's chat_template (as llama.cpp's chat-template tests quote it) over the
        // conversation of transformers.js' Mistral chat test, whose rendering and ids are cases.json's mistral_chat.
        const string template =
            "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
            + "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
        (string rendered, JsonElement expected) = Case("legacy", "mistral_chat");
        string directory = Directory.CreateTempSubdirectory("sp-tokenizer-").FullName;
        try
        {
            JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(DataDirectory, "tokenizer_config.json")))!.AsObject();
            config["chat_template"] = template;
            File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString());
            File.Copy(Path.Combine(DataDirectory, "tokenizer.json"), Path.Combine(directory, "tokenizer.json"));
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.Load(directory);
            var formatter = ChatPromptFormatter.Load(directory, tokenizer);

            string prompt = formatter.Format(
                [
                    new ChatMessage("user", "Hello, how are you?"),
                    new ChatMessage("assistant", "I'm doing great. How can I help you today?"),
                    new ChatMessage("user", "I'd like to show off how chat templating works!"),
                ],
                addGenerationPrompt: false);

            Assert.Equal(rendered, prompt);
            // As vLLM encodes a rendered chat prompt: without adding special tokens, the template wrote <s>.
            Assert.Equal(Ids(expected.GetProperty("ids")), tokenizer.Encode(prompt, addSpecialTokens: false));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Load_ReadsTheSpecialTokens_FromTheFiles()
    {
        HuggingFaceTokenizer tokenizer = Legacy.Value;

        Assert.Equal(32000, tokenizer.VocabSize);
        Assert.Equal(2, tokenizer.EndOfTextId);
        Assert.Equal("</s>", tokenizer.EndOfTextToken);
        Assert.Equal(1, tokenizer.BeginningOfTextId);
        Assert.Equal([1], tokenizer.PrefixIds);
        Assert.True(tokenizer.IsSpecialId(1));
        Assert.Equal([(byte)'\n'], tokenizer.TokenBytes(13).ToArray());
        Assert.Equal(" Hello"u8.ToArray(), tokenizer.TokenBytes(22557).ToArray());
    }

    [Fact]
    public void Encode_LongText_IsOneWordMergedInLinearithmicTime()
    {
        // Without a pre-tokenizer the whole text is one word; the merger must not be quadratic in its length.
        HuggingFaceTokenizer tokenizer = Legacy.Value;
        string text = string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 20_000));

        IReadOnlyList<int> ids = tokenizer.Encode(text);

        Assert.Equal(" " + text, ((ITokenizer)tokenizer).Decode(ids));
        Assert.Equal(text, tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Encode_MetaspaceThatSplits_MergesEachSpaceStartedWordOnItsOwn()
    {
        // Older files write Metaspace without "split" (tokenizers' default: split before every "▁"), so runs of
        // spaces cannot merge into "▁▁"-style tokens: "▁Hi" "▁" "▁" "▁Hello" "▁there", each merged alone.
        HuggingFaceTokenizer splitting = LoadRewritten(json =>
        {
            json["normalizer"] = null;
            json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["add_prefix_space"] = true };
        });
        HuggingFaceTokenizer whole = Metaspace.Value;
        int space = Assert.Single(whole.Encode(" "));

        int[] expected = [.. whole.Encode("Hi"), space, space, .. whole.Encode(" Hello"), .. whole.Encode(" there")];

        Assert.Equal(expected, splitting.Encode("Hi   Hello there"));
        Assert.NotEqual(expected, whole.Encode("Hi   Hello there"));
    }

    [Theory]
    [InlineData("""{"model":{"type":"Unigram","vocab":[["a",0.0]]}}""", "tokenizer model type 'Unigram' is not supported")]
    [InlineData("""{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"normalizer":{"type":"Lowercase"}}""", "normalizer 'Lowercase' is not supported")]
    [InlineData(
        """{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Metaspace","replacement":"▁"},"decoder":{"type":"BPEDecoder"}}""",
        "decoder 'BPEDecoder' is not supported with a SentencePiece-style tokenizer")]
    [InlineData("""{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Metaspace","replacement":"▁"}}""", "has no decoder")]
    public void Load_RefusesWhatItDoesNotImplement_NamingIt(string json, string message)
    {
        string directory = Directory.CreateTempSubdirectory("sp-tokenizer-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(directory, "tokenizer.json"), json);

            var error = Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizer.Load(directory));

            Assert.Contains(message, error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
