using System.Globalization;

namespace LlmServer.Training.DemoCorpus;

/// <summary>
/// The one tool the demo model is taught to call: <c>calculator</c>, which evaluates an arithmetic expression. The
/// corpus writes its answers into the training conversations, <c>eval --tools calculator</c> runs it for the calls
/// the model makes, and the playground offers the same definition (and runs its own evaluator in the browser).
/// </summary>
public static class DemoCalculator
{
    public const string Name = "calculator";

    /// <summary>The tool as a chat request's <c>tools</c> entry, in OpenAI's shape.</summary>
    public const string ToolJson = """
        {"type":"function","function":{"name":"calculator","description":"Evaluates an arithmetic expression and returns the result.","parameters":{"type":"object","properties":{"expression":{"type":"string","description":"An arithmetic expression such as 17 + 25"}},"required":["expression"]}}}
        """;

    /// <summary>The value of an expression of decimal numbers, + - * /, unary minus and parentheses, as the tool answers it.</summary>
    /// <exception cref="FormatException">The expression is not one of those, or divides by zero; the message says where.</exception>
    public static string Evaluate(string expression)
    {
        var parser = new Parser(expression);
        decimal value = parser.ParseExpression();
        parser.SkipSpaces();
        if (!parser.AtEnd)
        {
            throw new FormatException($"unexpected '{expression[parser.Position]}' at {parser.Position + 1}");
        }
        return Format(value);
    }

    /// <summary>Integers without a decimal point ("42"), other values without trailing zeros ("0.5").</summary>
    public static string Format(decimal value) => value.ToString("0.############", CultureInfo.InvariantCulture);

    /// <summary>Recursive descent over the usual precedence: sums of products of signed factors.</summary>
    private sealed class Parser(string text)
    {
        // Deep enough for any expression a person writes; bounded so a hostile one cannot exhaust the stack.
        private const int MaxNesting = 64;
        private int _nesting;

        public int Position { get; private set; }
        public bool AtEnd => Position >= text.Length;

        public decimal ParseExpression()
        {
            decimal value = ParseTerm();
            while (TryTake('+', '-') is { } op)
            {
                decimal right = ParseTerm();
                value = Checked(() => op == '+' ? value + right : value - right);
            }
            return value;
        }

        private decimal ParseTerm()
        {
            decimal value = ParseFactor();
            while (TryTake('*', '/') is { } op)
            {
                decimal right = ParseFactor();
                if (op == '/' && right == 0)
                {
                    throw new FormatException("division by zero");
                }
                value = Checked(() => op == '*' ? value * right : value / right);
            }
            return value;
        }

        private decimal ParseFactor()
        {
            if (++_nesting > MaxNesting)
            {
                throw new FormatException($"more than {MaxNesting} nested signs or parentheses");
            }
            try
            {
                if (TryTake('-') is not null)
                {
                    return -ParseFactor();
                }
                if (TryTake('(') is not null)
                {
                    decimal inner = ParseExpression();
                    if (TryTake(')') is null)
                    {
                        throw new FormatException($"missing ')' at {Position + 1}");
                    }
                    return inner;
                }
                return ParseNumber();
            }
            finally
            {
                _nesting--;
            }
        }

        private decimal ParseNumber()
        {
            SkipSpaces();
            int start = Position;
            while (!AtEnd && (char.IsAsciiDigit(text[Position]) || text[Position] == '.'))
            {
                Position++;
            }
            if (start == Position)
            {
                throw new FormatException(AtEnd ? "the expression ends where a number should be" : $"expected a number at {Position + 1}");
            }
            return decimal.TryParse(text.AsSpan(start, Position - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal number)
                ? number
                : throw new FormatException($"'{text[start..Position]}' is not a number");
        }

        private char? TryTake(params char[] operators)
        {
            SkipSpaces();
            if (!AtEnd && operators.Contains(text[Position]))
            {
                return text[Position++];
            }
            return null;
        }

        public void SkipSpaces()
        {
            while (!AtEnd && char.IsWhiteSpace(text[Position]))
            {
                Position++;
            }
        }

        private static decimal Checked(Func<decimal> operation)
        {
            try
            {
                return operation();
            }
            catch (OverflowException)
            {
                throw new FormatException("the result is too large");
            }
        }
    }
}
