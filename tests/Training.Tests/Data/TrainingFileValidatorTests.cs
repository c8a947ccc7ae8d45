using System.Text;
using LlmServer.Training.Data;

namespace LlmServer.Training.Tests.Data;

public sealed class TrainingFileValidatorTests
{
    private const string ChatExample =
        """{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}""";

    private const string PromptCompletionExample = """{"prompt":"2+2=","completion":"4"}""";

    [Fact]
    public void ValidChatFile_IsValid_WithItsFormatAndExampleCount()
    {
        TrainingFileReport report = Validate(ChatExample + "\n" + ChatExample + "\n");

        Assert.True(report.IsValid);
        Assert.Equal(TrainingFileFormat.Chat, report.Format);
        Assert.Equal(2, report.ExampleCount);
        Assert.Empty(report.Problems);
        Assert.Equal(0, report.ProblemCount);
        Assert.Equal("The training file is valid: 2 examples in chat format.", report.Describe());
    }

    [Fact]
    public void ValidPromptCompletionFile_IsValid()
    {
        TrainingFileReport report = Validate(PromptCompletionExample + "\n" + """{"prompt":"","completion":"x"}""");

        Assert.True(report.IsValid);
        Assert.Equal(TrainingFileFormat.PromptCompletion, report.Format);
        Assert.Equal(2, report.ExampleCount);
    }

    [Fact]
    public void ChatExample_MayHaveExtraPropertiesWeightsAndEmptyNonAssistantContent()
    {
        const string example = """
            {"id":7,"messages":[{"role":"system","content":"","name":"x"},{"role":"user","content":"Q"},{"role":"assistant","content":"A0","weight":0},{"role":"user","content":"Q"},{"role":"assistant","content":"A1","weight":1.0}]}
            """;

        Assert.True(Validate(example).IsValid);
    }

    [Fact]
    public void BlankLinesAndCrLfEndings_AreSkipped_ButStillCountTowardLineNumbers()
    {
        TrainingFileReport report = Validate("\n" + ChatExample + "\r\n  \t\r\n\r\n" + "{bad\r\n" + ChatExample + "\r\n\n");

        Assert.Equal(3, report.ExampleCount);
        TrainingFileProblem problem = Assert.Single(report.Problems);
        Assert.Equal(5, problem.LineNumber);
    }

    [Fact]
    public void ByteOrderMark_AtTheStart_IsIgnored()
    {
        byte[] withBom = [.. Encoding.UTF8.Preamble, .. Encoding.UTF8.GetBytes(ChatExample + "\n" + ChatExample)];

        TrainingFileReport report = Validate(withBom);

        Assert.True(report.IsValid);
        Assert.Equal(2, report.ExampleCount);
    }

    [Fact]
    public void ByteOrderMark_AfterTheFirstLine_IsNotJson()
    {
        byte[] bomOnSecondLine = [.. Encoding.UTF8.GetBytes(ChatExample + "\n"), .. Encoding.UTF8.Preamble, .. Encoding.UTF8.GetBytes(ChatExample)];

        TrainingFileReport report = Validate(bomOnSecondLine);

        Assert.Equal(2, Assert.Single(report.Problems).LineNumber);
    }

    [Fact]
    public void InvalidJson_IsReportedWithItsLineAndBytePosition()
    {
        TrainingFileReport report = Validate(ChatExample + "\n" + """{"messages": [}""");

        TrainingFileProblem problem = Assert.Single(report.Problems);
        Assert.Equal(2, problem.LineNumber);
        Assert.StartsWith("not valid JSON at byte 15 (", problem.Message);
        Assert.DoesNotContain("LineNumber", problem.Message);
        Assert.False(report.IsValid);
        Assert.Equal(TrainingFileFormat.Chat, report.Format);
    }

    [Fact]
    public void TwoJsonValuesOnOneLine_AreNotValidJson()
    {
        TrainingFileReport report = Validate(PromptCompletionExample + " " + PromptCompletionExample);

        Assert.StartsWith("not valid JSON", Assert.Single(report.Problems).Message);
    }

    [Theory]
    [InlineData("[1,2]", "not a JSON object but an array")]
    [InlineData("\"text\"", "not a JSON object but a string")]
    [InlineData("42", "not a JSON object but a number")]
    [InlineData("null", "not a JSON object but null")]
    [InlineData("""{"text":"hello"}""", "neither a chat example (\"messages\") nor a prompt/completion example (\"prompt\" and \"completion\")")]
    public void LineOfNeitherFormat_IsAnError(string line, string expectedMessage)
    {
        TrainingFileReport report = Validate(ChatExample + "\n" + ChatExample + "\n" + line);

        Assert.Equal(new TrainingFileProblem(3, expectedMessage), Assert.Single(report.Problems));
        Assert.Equal(3, report.ExampleCount);
    }

    [Theory]
    [InlineData("""{"messages":{}}""", "\"messages\" must be an array, not an object")]
    [InlineData("""{"messages":[]}""", "\"messages\" is empty")]
    [InlineData("""{"messages":["hi",{"role":"assistant","content":"A"}]}""", "message 1: must be an object, not a string")]
    [InlineData("""{"messages":[{"content":"Q"},{"role":"assistant","content":"A"}]}""", "message 1: \"role\" is missing")]
    [InlineData("""{"messages":[{"role":3,"content":"Q"},{"role":"assistant","content":"A"}]}""", "message 1: \"role\" must be a string, not a number")]
    [InlineData("""{"messages":[{"role":"function","content":"Q"},{"role":"assistant","content":"A"}]}""", "message 1: role \"function\" is not supported (use system, user, assistant or tool)")]
    [InlineData("""{"messages":[{"role":"User","content":"Q"},{"role":"assistant","content":"A"}]}""", "message 1: role \"User\" is not supported (use system, user, assistant or tool)")]
    [InlineData("""{"messages":[{"role":"user"},{"role":"assistant","content":"A"}]}""", "message 1: \"content\" is missing")]
    [InlineData("""{"messages":[{"role":"user","content":null},{"role":"assistant","content":"A"}]}""", "message 1: \"content\" must be a string, not null")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":""}]}""", "message 2: assistant message with empty content")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"}]}""", "no assistant message to train on")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A","weight":0}]}""", "no assistant message to train on")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A","weight":0.5}]}""", "message 2: \"weight\" must be 0 or 1")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A","weight":"1"}]}""", "message 2: \"weight\" must be 0 or 1")]
    [InlineData("""{"messages":[{"role":"user","content":"Q","weight":1},{"role":"assistant","content":"A"}]}""", "message 1: \"weight\" is only allowed on assistant messages")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A","tool_calls":[]}]}""", "message 2: \"tool_calls\" must be a non-empty array")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]}""", "message 2: tool call 1: must be an object with a \"function\" object")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"[1]"}}]}]}""", "message 2: tool call 1: \"arguments\" must be a JSON object written as a string")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","tool_calls":[{"type":"function","function":{"arguments":"{}"}}]}]}""", "message 2: tool call 1: \"name\" is missing")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"tool","content":"4","tool_call_id":4},{"role":"assistant","content":"A"}]}""", "message 2: \"tool_call_id\" must be a string, not a number")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}],"tools":{}}""", "\"tools\" must be an array, not an object")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}],"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}""", "tool 1: \"parameters\" must be a JSON schema object, not a string")]
    public void InvalidChatExample_ReportsTheRuleItBreaks(string line, string expectedMessage)
    {
        TrainingFileReport report = Validate(ChatExample + "\n" + line + "\n" + ChatExample);

        Assert.Equal(new TrainingFileProblem(2, expectedMessage), Assert.Single(report.Problems));
        Assert.Equal(1, report.ProblemCount);
        Assert.False(report.IsValid);
    }

    [Fact]
    public void ChatExample_WithToolsAndToolCalls_InOpenAisFunctionCallingFormat_IsValid()
    {
        const string line = """
            {"messages":[{"role":"user","content":"What is 17 + 25?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"calculator","arguments":"{\"expression\": \"17 + 25\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"42"},{"role":"assistant","content":"17 + 25 = 42"}],"tools":[{"type":"function","function":{"name":"calculator","parameters":{"type":"object","properties":{"expression":{"type":"string"}}}}}]}
            """;

        TrainingFileReport report = Validate(line.Trim() + "\n" + ChatExample);

        Assert.Empty(report.Problems);
        Assert.True(report.IsValid);
        Assert.Equal(TrainingFileFormat.Chat, report.Format);
    }

    [Fact]
    public void ChatExample_WithSeveralProblems_ReportsEachOnItsLine()
    {
        TrainingFileReport report = Validate("""{"messages":[{"role":"function","content":"Q"},{"role":"assistant","content":7}]}""");

        Assert.Equal(
            [
                new TrainingFileProblem(1, "message 1: role \"function\" is not supported (use system, user, assistant or tool)"),
                new TrainingFileProblem(1, "message 2: \"content\" must be a string, not a number"),
            ],
            report.Problems);
        Assert.Null(report.Format);
    }

    [Theory]
    [InlineData("""{"completion":"4"}""", "\"prompt\" is missing")]
    [InlineData("""{"prompt":"2+2="}""", "\"completion\" is missing")]
    [InlineData("""{"prompt":2,"completion":"4"}""", "\"prompt\" must be a string, not a number")]
    [InlineData("""{"prompt":"2+2=","completion":["4"]}""", "\"completion\" must be a string, not an array")]
    [InlineData("""{"prompt":"2+2=","completion":""}""", "\"completion\" is empty")]
    public void InvalidPromptCompletionExample_ReportsTheRuleItBreaks(string line, string expectedMessage)
    {
        TrainingFileReport report = Validate(PromptCompletionExample + "\n\n" + line);

        Assert.Equal(new TrainingFileProblem(3, expectedMessage), Assert.Single(report.Problems));
    }

    [Fact]
    public void PromptCompletionLine_InAChatFile_IsAnError()
    {
        TrainingFileReport report = Validate(string.Join("\n", ChatExample, ChatExample, PromptCompletionExample, ChatExample));

        Assert.Equal(TrainingFileFormat.Chat, report.Format);
        Assert.Equal(new TrainingFileProblem(3, "prompt/completion example in a chat file"), Assert.Single(report.Problems));
    }

    [Fact]
    public void ChatLine_InAPromptCompletionFile_IsAnError_EvenWhenItIsInvalidChat()
    {
        TrainingFileReport report = Validate(PromptCompletionExample + "\n" + """{"messages":[]}""");

        Assert.Equal(TrainingFileFormat.PromptCompletion, report.Format);
        Assert.Equal(new TrainingFileProblem(2, "chat example in a prompt/completion file"), Assert.Single(report.Problems));
    }

    [Fact]
    public void FileFormat_IsDecidedByTheFirstValidExample_NotTheFirstLine()
    {
        TrainingFileReport report = Validate(string.Join("\n", """{"messages":[]}""", PromptCompletionExample, ChatExample));

        Assert.Equal(TrainingFileFormat.PromptCompletion, report.Format);
        Assert.Equal(
            [
                new TrainingFileProblem(1, "\"messages\" is empty"),
                new TrainingFileProblem(3, "chat example in a prompt/completion file"),
            ],
            report.Problems);
    }

    [Fact]
    public void Problems_AreCappedAtMaxProblems_WhileProblemCountCountsThemAll()
    {
        string file = string.Join("\n", Enumerable.Range(0, 25).Select(_ => "not json"));

        TrainingFileReport report = Validate(file, maxProblems: 3);

        Assert.Equal([1, 2, 3], report.Problems.Select(problem => problem.LineNumber));
        Assert.Equal(25, report.ProblemCount);
        Assert.Equal(25, report.ExampleCount);
        Assert.False(report.IsValid);
    }

    [Fact]
    public void MaxProblems_DefaultsToTen()
    {
        TrainingFileReport report = Validate(string.Join("\n", Enumerable.Range(0, 12).Select(_ => "[]")));

        Assert.Equal(10, report.Problems.Count);
        Assert.Equal(12, report.ProblemCount);
    }

    [Fact]
    public void MaxProblemsZero_KeepsNoProblems_ButStillCountsThem()
    {
        TrainingFileReport report = Validate("[]\n[]", maxProblems: 0);

        Assert.Empty(report.Problems);
        Assert.Equal(2, report.ProblemCount);
        Assert.Equal("The training file is invalid: 2 problems.", report.Describe());
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n  \r\n")]
    public void EmptyFile_HasNoExamples_AndIsNotValid(string content)
    {
        TrainingFileReport report = Validate(content);

        Assert.False(report.IsValid);
        Assert.Equal(0, report.ExampleCount);
        Assert.Equal(0, report.ProblemCount);
        Assert.Null(report.Format);
        Assert.Equal("The training file has no examples.", report.Describe());
    }

    [Fact]
    public void BomOnlyFile_HasNoExamples()
    {
        Assert.Equal(0, Validate([.. Encoding.UTF8.Preamble]).ExampleCount);
    }

    [Fact]
    public void Describe_ListsTheKeptProblemsWithLineNumbers_OnOneLine()
    {
        string file = string.Join("\n", ChatExample, "[]", ChatExample, PromptCompletionExample, "[]", "[]");

        string description = Validate(file, maxProblems: 2).Describe();

        Assert.Equal(
            "The training file is invalid: 4 problems, the first 2: line 2: not a JSON object but an array; "
                + "line 4: prompt/completion example in a chat file.",
            description);
    }

    [Fact]
    public void Describe_OfASingleProblem_DoesNotSayTheFirst()
    {
        string description = Validate(ChatExample + "\n[]").Describe();

        Assert.Equal("The training file is invalid: 1 problem: line 2: not a JSON object but an array.", description);
    }

    [Fact]
    public void Describe_StaysOnOneLine_WhenTheFileHoldsLineBreakingCharacters()
    {
        // JSON strings may hold U+2028 and DEL unescaped; the role is echoed back in the message.
        string role = "ro\u2028le\u007f" + new string('x', 200);
        string line = $$"""{"messages":[{"role":"{{role}}","content":"Q"},{"role":"assistant","content":"A"}]}""";

        TrainingFileReport report = Validate(line + "\n" + "{\"a\":\u0001}");
        string description = report.Describe();

        Assert.DoesNotContain('\n', description);
        Assert.DoesNotContain('\u2028', description);
        Assert.DoesNotContain('\u007f', description);
        Assert.Contains("role \"ro\\u2028le\\u007fxxx", description);
        Assert.True(description.Length < 400, description);
        Assert.Equal([1, 2], report.Problems.Select(problem => problem.LineNumber));
    }

    [Fact]
    public void LongRole_IsCutShort_WithoutSplittingASurrogatePair()
    {
        string role = new string('x', 39) + "\U0001F389" + new string('y', 100);
        string line = $$"""{"messages":[{"role":"{{role}}","content":"Q"},{"role":"assistant","content":"A"}]}""";

        TrainingFileProblem problem = Assert.Single(Validate(line).Problems);

        Assert.Equal($"message 1: role \"{new string('x', 39)}...\" is not supported (use system, user, assistant or tool)", problem.Message);
    }

    [Fact]
    public void InvalidUtf8_IsReportedOnItsLine_WithTheBytePosition()
    {
        byte[] prefix = Encoding.UTF8.GetBytes(ChatExample + "\n" + "{\"prompt\":\"caf");
        byte[] suffix = Encoding.UTF8.GetBytes("\",\"completion\":\"x\"}\n" + ChatExample);
        byte[] file = [.. prefix, 0xC3, 0x28, .. suffix];

        TrainingFileReport report = Validate(file);

        // {"prompt":"caf is 14 bytes, so the stray lead byte is the 15th.
        Assert.Equal(new TrainingFileProblem(2, "not valid UTF-8 at byte 15"), Assert.Single(report.Problems));
        Assert.Equal(3, report.ExampleCount);
        Assert.Equal(TrainingFileFormat.Chat, report.Format);
    }

    [Fact]
    public void TruncatedUtf8Sequence_AtTheEndOfTheFile_IsInvalidUtf8()
    {
        byte[] file = [.. Encoding.UTF8.GetBytes(PromptCompletionExample + "\n"), 0xE2, 0x82];

        Assert.Equal(new TrainingFileProblem(2, "not valid UTF-8 at byte 1"), Assert.Single(Validate(file).Problems));
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"\ud800","content":"Q"},{"role":"assistant","content":"A"}]}""", "message 1: \"role\" holds an unpaired surrogate escape")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A \udc00"}]}""", "message 2: \"content\" holds an unpaired surrogate escape")]
    [InlineData("""{"prompt":"\ud800 x","completion":"4"}""", "\"prompt\" holds an unpaired surrogate escape")]
    [InlineData("""{"prompt":"2+2=","completion":"\udfff"}""", "\"completion\" holds an unpaired surrogate escape")]
    public void EscapedLoneSurrogate_IsAProblem_NotAnException(string line, string expectedMessage)
    {
        Assert.Equal(new TrainingFileProblem(1, expectedMessage), Assert.Single(Validate(line).Problems));
    }

    [Fact]
    public void EscapedSurrogatePair_IsValid()
    {
        Assert.True(Validate("""{"prompt":"\ud83c\udf89","completion":"\u0034"}""").IsValid);
    }

    [Fact]
    public void MultiByteCharacters_AreValid()
    {
        string example = """{"prompt":"Ünïcødé 日本語 🎉","completion":"✓"}""";

        Assert.True(Validate(example).IsValid);
    }

    [Fact]
    public void LongLines_SpanningManyReads_AreValidatedWhole()
    {
        string longContent = string.Concat(Enumerable.Repeat("日本語 text ", 30_000));
        string longExample = $$"""{"messages":[{"role":"user","content":"{{longContent}}"},{"role":"assistant","content":"ok"}]}""";

        TrainingFileReport report = Validate(string.Join("\n", longExample, "[]", longExample));

        Assert.True(Encoding.UTF8.GetByteCount(longExample) > 300_000);
        Assert.Equal(3, report.ExampleCount);
        Assert.Equal(new TrainingFileProblem(2, "not a JSON object but an array"), Assert.Single(report.Problems));
    }

    [Fact]
    public void StreamReturningOneByteAtATime_GivesTheSameReport()
    {
        byte[] file = [.. Encoding.UTF8.Preamble, .. Encoding.UTF8.GetBytes(ChatExample + "\r\n\r\n[]\r\n" + ChatExample + "\r\n")];

        TrainingFileReport report = TrainingFileValidator.Validate(new OneByteAtATimeStream(file));

        Assert.Equal(3, report.ExampleCount);
        Assert.Equal(new TrainingFileProblem(3, "not a JSON object but an array"), Assert.Single(report.Problems));
    }

    [Fact]
    public void NullStream_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => TrainingFileValidator.Validate(null!));
    }

    [Fact]
    public void NegativeMaxProblems_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Validate(ChatExample, maxProblems: -1));
    }

    private static TrainingFileReport Validate(string content, int maxProblems = 10) =>
        Validate(Encoding.UTF8.GetBytes(content), maxProblems);

    private static TrainingFileReport Validate(byte[] content, int maxProblems = 10) =>
        TrainingFileValidator.Validate(new MemoryStream(content), maxProblems);

    /// <summary>Splits every multi-byte sequence, BOM and CRLF across reads, as a slow network upload might.</summary>
    private sealed class OneByteAtATimeStream(byte[] content) : MemoryStream(content)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, 1));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, 1)]);
    }
}
