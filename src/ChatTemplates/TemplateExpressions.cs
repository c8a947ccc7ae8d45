namespace LlmServer.ChatTemplates;

/// <summary>An expression node; <see cref="Line"/> locates errors in the template source.</summary>
internal abstract record TemplateExpression(int Line);

internal sealed record LiteralExpression(object? Value, int Line) : TemplateExpression(Line);

internal sealed record NameExpression(string Name, int Line) : TemplateExpression(Line);

/// <summary>A list literal <c>[a, b]</c> or a tuple <c>(a, b)</c> / <c>a, b</c>.</summary>
internal sealed record ListExpression(IReadOnlyList<TemplateExpression> Items, bool IsTuple, int Line) : TemplateExpression(Line);

internal sealed record DictExpression(IReadOnlyList<KeyValuePair<TemplateExpression, TemplateExpression>> Entries, int Line)
    : TemplateExpression(Line);

/// <summary><c>target.name</c></summary>
internal sealed record AttributeExpression(TemplateExpression Target, string Attribute, int Line) : TemplateExpression(Line);

/// <summary><c>target[index]</c></summary>
internal sealed record IndexExpression(TemplateExpression Target, TemplateExpression Index, int Line) : TemplateExpression(Line);

/// <summary><c>target[start:stop:step]</c>; omitted parts are null.</summary>
internal sealed record SliceExpression(
    TemplateExpression Target, TemplateExpression? Start, TemplateExpression? Stop, TemplateExpression? Step, int Line)
    : TemplateExpression(Line);

internal sealed record UnaryExpression(UnaryOperator Operator, TemplateExpression Operand, int Line) : TemplateExpression(Line);

internal sealed record BinaryExpression(BinaryOperator Operator, TemplateExpression Left, TemplateExpression Right, int Line)
    : TemplateExpression(Line);

/// <summary><c>and</c>/<c>or</c>, which short-circuit and yield an operand, not a bool, as in Python.</summary>
internal sealed record LogicalExpression(bool IsAnd, TemplateExpression Left, TemplateExpression Right, int Line)
    : TemplateExpression(Line);

/// <summary><c>a ~ b ~ c</c>: string concatenation of every operand's text.</summary>
internal sealed record ConcatExpression(IReadOnlyList<TemplateExpression> Parts, int Line) : TemplateExpression(Line);

/// <summary>A comparison chain such as <c>a &lt; b &lt;= c</c>, meaning <c>a &lt; b and b &lt;= c</c>.</summary>
internal sealed record CompareExpression(
    TemplateExpression First, IReadOnlyList<KeyValuePair<ComparisonOperator, TemplateExpression>> Rest, int Line)
    : TemplateExpression(Line);

/// <summary><c>WhenTrue if Condition else WhenFalse</c>; without <c>else</c> the result is undefined.</summary>
internal sealed record ConditionalExpression(
    TemplateExpression Condition, TemplateExpression WhenTrue, TemplateExpression? WhenFalse, int Line)
    : TemplateExpression(Line);

internal sealed record ArgumentList(
    IReadOnlyList<TemplateExpression> Positional, IReadOnlyList<KeyValuePair<string, TemplateExpression>> Named)
{
    public static readonly ArgumentList Empty = new([], []);
}

internal sealed record CallExpression(TemplateExpression Callee, ArgumentList Arguments, int Line) : TemplateExpression(Line);

/// <summary><c>Target | Name(Arguments)</c></summary>
internal sealed record FilterExpression(TemplateExpression Target, string Name, ArgumentList Arguments, int Line)
    : TemplateExpression(Line);

/// <summary><c>Target is [not] Name(Arguments)</c></summary>
internal sealed record TestExpression(TemplateExpression Target, string Name, ArgumentList Arguments, bool Negated, int Line)
    : TemplateExpression(Line);
