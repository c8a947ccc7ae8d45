using System.Text.Json;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Training.Tests.DemoCorpus;

public sealed class DemoCalculatorTests
{
    [Theory]
    [InlineData("17 + 25", "42")]
    [InlineData("71 - 42", "29")]
    [InlineData("7 * 8", "56")]
    [InlineData("2 + 3 * 4", "14")]
    [InlineData("(2 + 3) * 4", "20")]
    [InlineData("10 - 4 - 3", "3")]
    [InlineData("1 / 4", "0.25")]
    [InlineData("-3 * -(2 + 1)", "9")]
    [InlineData(" 0.5+0.25 ", "0.75")]
    public void Evaluates_with_the_usual_precedence_and_answers_integers_without_a_point(string expression, string expected)
    {
        Assert.Equal(expected, DemoCalculator.Evaluate(expression));
    }

    [Theory]
    [InlineData("", "the expression ends where a number should be")]
    [InlineData("2 +", "the expression ends where a number should be")]
    [InlineData("2 ^ 3", "unexpected '^' at 3")]
    [InlineData("(2 + 3", "missing ')' at 7")]
    [InlineData("4 / (2 - 2)", "division by zero")]
    [InlineData("1.2.3", "'1.2.3' is not a number")]
    [InlineData("abc", "expected a number at 1")]
    public void Refuses_what_is_not_an_expression_saying_why(string expression, string reason)
    {
        FormatException refused = Assert.Throws<FormatException>(() => DemoCalculator.Evaluate(expression));

        Assert.Equal(reason, refused.Message);
    }

    [Fact]
    public void Deep_nesting_and_huge_results_are_refused_not_a_crash()
    {
        Assert.Contains("nested", Assert.Throws<FormatException>(() => DemoCalculator.Evaluate(new string('(', 10_000) + "1" + new string(')', 10_000))).Message);
        Assert.Equal("the result is too large", Assert.Throws<FormatException>(() => DemoCalculator.Evaluate("79228162514264337593543950335 * 2")).Message);
    }

    [Fact]
    public void The_tool_definition_is_an_OpenAI_function_tool_taking_an_expression()
    {
        using JsonDocument tool = JsonDocument.Parse(DemoCalculator.ToolJson);
        JsonElement function = tool.RootElement.GetProperty("function");

        Assert.Equal("function", tool.RootElement.GetProperty("type").GetString());
        Assert.Equal(DemoCalculator.Name, function.GetProperty("name").GetString());
        Assert.Equal(["expression"], function.GetProperty("parameters").GetProperty("required").EnumerateArray().Select(e => e.GetString()));
    }
}
