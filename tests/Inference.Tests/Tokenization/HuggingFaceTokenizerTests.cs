using System.Collections.Concurrent;
using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.Tokenization;

/// <summary>
/// The tokenizer.json tokenizer against ../shared/fixtures/tokenizers/{llama3,qwen3}: every case of
/// cases.json (ids from transformers.js) for each way of encoding and decoding, and every conversation of
/// chat_cases.json rendered with the repository's Jinja interpreter and encoded.
/// </summary>
public sealed class HuggingFaceTokenizerTests
{
    private static readonly string[] Families = ["llama3", "qwen3"];

    // Loading a 10 MB tokenizer.json takes a moment; every test of a family shares one instance.
    private static readonly ConcurrentDictionary<string, Lazy<HuggingFaceTokenizer>> Tokenizers = new();

    private static string FamilyDirectory(string family) => Path.Combine(TestFixtures.FixturesDirectory, "tokenizers", family);

    private static HuggingFaceTokenizer Tokenizer(string family) =>
        Tokenizers.GetOrAdd(family, name => new Lazy<HuggingFaceTokenizer>(() => HuggingFaceTokenizer.Load(FamilyDirectory(name)))).Value;

    private static JsonElement Cases(string family, string file)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(FamilyDirectory(family), file)));
        return document.RootElement.GetProperty("cases").Clone();
    }

    private static JsonElement Case(string family, string file, string name) =>
        Cases(family, file).EnumerateArray().Single(item => item.GetProperty("name").GetString() == name);

    private static int[] Ids(JsonElement element) => element.EnumerateArray().Select(id => id.GetInt32()).ToArray();

    public static TheoryData<string, string> TokenizerCases()
    {
        var data = new TheoryData<string, string>();
        foreach (string family in Families)
        {
            foreach (JsonElement item in Cases(family, "cases.json").EnumerateArray())
            {
                data.Add(family, item.GetProperty("name").GetString()!);
            }
        }

        return data;
    }

    public static TheoryData<string, string> ChatCases()
    {
        var data = new TheoryData<string, string>();
        foreach (string family in Families)
        {
            foreach (JsonElement item in Cases(family, "chat_cases.json").EnumerateArray())
            {
                data.Add(family, item.GetProperty("name").GetString()!);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Encode_WithoutSpecialTokens_MatchesHuggingFace(string family, string name)
    {
        JsonElement item = Case(family, "cases.json", name);
        string text = item.GetProperty("text").GetString()!;

        Assert.Equal(Ids(item.GetProperty("ids")), Tokenizer(family).Encode(text, addSpecialTokens: false));
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Encode_WithSpecialTokens_AddsWhatThePostProcessorAdds(string family, string name)
    {
        JsonElement item = Case(family, "cases.json", name);
        string text = item.GetProperty("text").GetString()!;

        Assert.Equal(Ids(item.GetProperty("ids_with_special")), Tokenizer(family).Encode(text, addSpecialTokens: true));
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Encode_SplittingSpecialTokens_EncodesTheirTextAsPlainText(string family, string name)
    {
        JsonElement item = Case(family, "cases.json", name);
        string text = item.GetProperty("text").GetString()!;

        IReadOnlyList<int> ids = Tokenizer(family).Encode(
            text, addSpecialTokens: false, splitSpecialTokens: true, int.MaxValue, CancellationToken.None);

        Assert.Equal(Ids(item.GetProperty("ids_split_special")), ids);
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void Decode_MatchesHuggingFace_WithAndWithoutCleanUp(string family, string name)
    {
        JsonElement item = Case(family, "cases.json", name);
        int[] ids = Ids(item.GetProperty("ids"));
        HuggingFaceTokenizer tokenizer = Tokenizer(family);

        Assert.Equal(item.GetProperty("decoded").GetString(), tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(item.GetProperty("decoded_no_cleanup").GetString(), tokenizer.Decode(ids, skipSpecialTokens: false, cleanUpTokenizationSpaces: false));
        // What serving streams and ITokenizer.Decode gives: no clean-up.
        Assert.Equal(item.GetProperty("decoded_no_cleanup").GetString(), ((ITokenizer)tokenizer).Decode(ids));
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void TokenText_OfEachId_IsTheVocabularyEntryDecoded(string family, string name)
    {
        JsonElement item = Case(family, "cases.json", name);
        int[] ids = Ids(item.GetProperty("ids"));
        string[] tokens = item.GetProperty("tokens").EnumerateArray().Select(token => token.GetString()!).ToArray();
        HuggingFaceTokenizer tokenizer = Tokenizer(family);

        Assert.Equal(tokens.Length, ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            // The vocabulary string is the byte-level form of the token's bytes; an added token is its own text.
            bool added = tokenizer.AddedTokens.Any(token => token.Id == ids[i]);
            Assert.Equal(tokens[i], ByteLevelString(tokenizer.TokenBytes(ids[i]).ToArray(), added));
        }
    }

    [Fact]
    public void Decode_SkippingSpecialTokens_DropsOnlyTokensMarkedSpecial()
    {
        HuggingFaceTokenizer qwen = Tokenizer("qwen3");
        IReadOnlyList<int> ids = qwen.Encode("<|im_start|>user\n<think>hi</think><|im_end|>");

        Assert.Equal("user\n<think>hi</think>", qwen.Decode(ids, skipSpecialTokens: true));
        Assert.Equal(151645, qwen.EndOfTextId);
        Assert.True(qwen.IsSpecialId(151644));
        Assert.False(qwen.IsSpecialId(151667));
    }

    [Fact]
    public void Load_ReadsEndOfTextAndBeginningOfText_FromTokenizerConfig()
    {
        HuggingFaceTokenizer llama = Tokenizer("llama3");

        Assert.Equal(128009, llama.EndOfTextId);
        Assert.Equal(128000, llama.BeginningOfTextId);
        Assert.Equal([128000], llama.PrefixIds);
        Assert.Equal(128256, llama.VocabSize);
        Assert.Equal(151669, Tokenizer("qwen3").VocabSize);
    }

    [Theory]
    [InlineData("llama3-random-2l-64d", new[] { 128009, 128001 })]
    [InlineData("qwen3-random-2l-64d", new[] { 151645, 151643 })]
    public void EndOfSequenceIds_AreTheConfigEosThenGenerationConfigsList(string model, int[] expected)
    {
        // tokenizer_config.json's eos_token first, then every id of generation_config.json's eos_token_id.
        string directory = TestFixtures.ModelDirectory(model);
        using JsonDocument generation = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "generation_config.json")));
        JsonElement eos = generation.RootElement.GetProperty("eos_token_id");
        int[] listed = eos.ValueKind == JsonValueKind.Array ? Ids(eos) : [eos.GetInt32()];

        ITokenizer tokenizer = HuggingFaceTokenizer.Load(directory);

        Assert.Equal(expected, tokenizer.EndOfSequenceIds);
        Assert.Subset(tokenizer.EndOfSequenceIds.ToHashSet(), listed.ToHashSet());
    }

    [Fact]
    public void Encode_LongWord_TakesTheLinearTimeMergerAndAgreesWithTheLibrary()
    {
        // Words above Gpt2Tokenizer.LibraryWordBytes go to ByteLevelBpe; split into library-sized words the
        // same letters must merge the same way, which the cases' 510-character word checks against HF too.
        HuggingFaceTokenizer llama = Tokenizer("llama3");
        string word = string.Concat(Enumerable.Repeat("tokenization", 40));

        IReadOnlyList<int> ids = llama.Encode(word);

        Assert.Equal(word, llama.Decode(ids));
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Encode_LetterOutsideTheBmp_IsOneLetterForTheSplitRegex(string family)
    {
        // Hugging Face's regex sees code points: "𝐀" (U+1D400, a letter) is matched by \p{L}, so "𝐀's"
        // splits as "𝐀" + "'s"; .NET's UTF-16 regex alone would see two non-letters and split "𝐀'" + "s".
        HuggingFaceTokenizer tokenizer = Tokenizer(family);

        Assert.Equal([.. tokenizer.Encode("\U0001D400"), .. tokenizer.Encode("'s")], tokenizer.Encode("\U0001D400's"));
        Assert.Equal("\U0001D400's", tokenizer.Decode(tokenizer.Encode("\U0001D400's")));
        Assert.Equal(" x\U0001D400y", tokenizer.Decode(tokenizer.Encode(" x\U0001D400y")));
    }

    [Theory]
    [MemberData(nameof(TokenizerCases))]
    public void IncrementalDetokenizer_DeltasConcatenate_ToTheCleanUpFreeDecoding(string family, string name)
    {
        JsonElement item = Case(family, "cases.json", name);
        var detokenizer = new IncrementalDetokenizer(Tokenizer(family));

        string streamed = string.Concat(Ids(item.GetProperty("ids")).Select(detokenizer.Push)) + detokenizer.Flush();

        Assert.Equal(item.GetProperty("decoded_no_cleanup").GetString(), streamed);
    }

    [Theory]
    [MemberData(nameof(ChatCases))]
    public void ChatTemplate_RendersAndEncodesAsHuggingFace(string family, string name)
    {
        JsonElement item = Case(family, "chat_cases.json", name);
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(FamilyDirectory(family), "tokenizer_config.json")));
        var template = ChatTemplate.Parse(config.RootElement.GetProperty("chat_template").GetString()!);

        // What transformers passes: the config's special tokens, tools and documents (null when absent), template kwargs.
        var variables = new Dictionary<string, object?>
        {
            ["tools"] = item.TryGetProperty("tools", out JsonElement tools) ? tools : null,
            ["documents"] = null,
        };
        foreach (string token in new[] { "bos_token", "eos_token", "pad_token", "unk_token" })
        {
            if (HuggingFaceTokenizer.TokenString(config.RootElement, token) is string value)
            {
                variables[token] = value;
            }
        }

        if (item.TryGetProperty("template_kwargs", out JsonElement kwargs))
        {
            foreach (JsonProperty kwarg in kwargs.EnumerateObject())
            {
                variables[kwarg.Name] = kwarg.Value;
            }
        }

        var messages = item.GetProperty("messages").EnumerateArray().Select(message => (object?)message).ToList();
        string rendered = template.RenderMessages(messages, item.GetProperty("add_generation_prompt").GetBoolean(), variables);

        Assert.Equal(item.GetProperty("rendered").GetString(), rendered);
        Assert.Equal(Ids(item.GetProperty("ids")), Tokenizer(family).Encode(rendered, addSpecialTokens: false));
        Assert.Equal(rendered, Tokenizer(family).Decode(Ids(item.GetProperty("ids")), skipSpecialTokens: false, cleanUpTokenizationSpaces: false));
    }

    [Theory]
    [MemberData(nameof(ChatCases))]
    public void ChatPromptFormatter_RendersPlainConversationsAsHuggingFace(string family, string name)
    {
        // What serving renders: ChatMessage (role, content) only, so the tool and template-kwargs cases are left to the test above.
        JsonElement item = Case(family, "chat_cases.json", name);
        if (item.TryGetProperty("tools", out _) || item.TryGetProperty("template_kwargs", out _))
        {
            return;
        }

        var formatter = ChatPromptFormatter.Load(FamilyDirectory(family), Tokenizer(family));
        var messages = item.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))
            .ToList();

        Assert.Equal(item.GetProperty("rendered").GetString(), formatter.Format(messages, item.GetProperty("add_generation_prompt").GetBoolean()));
    }

    [Fact]
    public void ChatPromptFormatter_RendersAToolConversationAsHuggingFace()
    {
        // What serving renders for the Qwen3 tool case: typed messages (tool_calls as ChatToolCall) and the tools list.
        JsonElement item = Case("qwen3", "chat_cases.json", "tools");
        var formatter = ChatPromptFormatter.Load(FamilyDirectory("qwen3"), Tokenizer("qwen3"));
        Assert.True(formatter.RendersToolCalls);
        var messages = item.GetProperty("messages").EnumerateArray().Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)
        {
            ToolCalls = m.TryGetProperty("tool_calls", out JsonElement calls)
                ? calls.EnumerateArray().Select(c => new ChatToolCall(null, c.GetProperty("function").GetProperty("name").GetString()!,
                    c.GetProperty("function").GetProperty("arguments"))).ToList()
                : null,
        }).ToList();

        string rendered = formatter.Format(messages, item.GetProperty("add_generation_prompt").GetBoolean(), item.GetProperty("tools"));

        Assert.Equal(item.GetProperty("rendered").GetString(), rendered);
        Assert.Equal(Ids(item.GetProperty("ids")), Tokenizer("qwen3").Encode(rendered, addSpecialTokens: false));
    }

    [Fact]
    public void ChatPromptFormatter_RendersToolCalls_OnlyForTemplatesThatMentionThem()
    {
        // Llama 3 8B Instruct's template predates tool calling (Llama 3.1's renders them); GPT-2's default is plain ChatML.
        Assert.False(ChatPromptFormatter.Load(FamilyDirectory("llama3"), Tokenizer("llama3")).RendersToolCalls);
        Assert.False(ChatPromptFormatter.FromTemplate(null, "<|endoftext|>").RendersToolCalls);
    }

    private static string ByteLevelString(byte[] bytes, bool added) =>
        added ? System.Text.Encoding.UTF8.GetString(bytes) : new string(bytes.Select(ByteLevelAlphabet.ToChar).ToArray());
}
