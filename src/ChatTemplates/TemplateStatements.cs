namespace LlmServer.ChatTemplates;

/// <summary>A statement node: literal text, an output tag or a block tag with its body.</summary>
internal abstract record TemplateStatement(int Line);

internal sealed record TextStatement(string Text, int Line) : TemplateStatement(Line);

/// <summary><c>{{ expression }}</c></summary>
internal sealed record OutputStatement(TemplateExpression Expression, int Line) : TemplateStatement(Line);

internal sealed record ConditionalBranch(TemplateExpression Condition, IReadOnlyList<TemplateStatement> Body);

/// <summary><c>{% if %}</c> with its <c>elif</c> branches in order and an optional <c>else</c>.</summary>
internal sealed record IfStatement(IReadOnlyList<ConditionalBranch> Branches, IReadOnlyList<TemplateStatement> ElseBody, int Line)
    : TemplateStatement(Line);

/// <summary>
/// <c>{% for a, b in Iterable if Filter %}Body{% else %}ElseBody{% endfor %}</c>. The else body runs
/// when no item passed the filter.
/// </summary>
internal sealed record ForStatement(
    IReadOnlyList<string> Targets,
    TemplateExpression Iterable,
    TemplateExpression? Filter,
    IReadOnlyList<TemplateStatement> Body,
    IReadOnlyList<TemplateStatement> ElseBody,
    int Line)
    : TemplateStatement(Line);

/// <summary><c>{% set a = ... %}</c> or, with several targets, <c>{% set a, b = ... %}</c>.</summary>
internal sealed record SetStatement(IReadOnlyList<string> Targets, TemplateExpression Value, int Line) : TemplateStatement(Line);

/// <summary><c>{% set ns.attribute = ... %}</c>, the only way to change state from inside a loop.</summary>
internal sealed record SetNamespaceAttributeStatement(string Namespace, string Attribute, TemplateExpression Value, int Line)
    : TemplateStatement(Line);

/// <summary><c>{% set name %}Body{% endset %}</c> captures rendered text into a variable.</summary>
internal sealed record SetBlockStatement(string Name, IReadOnlyList<TemplateStatement> Body, int Line) : TemplateStatement(Line);

internal sealed record MacroParameter(string Name, TemplateExpression? Default);

internal sealed record MacroStatement(string Name, IReadOnlyList<MacroParameter> Parameters, IReadOnlyList<TemplateStatement> Body, int Line)
    : TemplateStatement(Line);

internal sealed record BreakStatement(int Line) : TemplateStatement(Line);

internal sealed record ContinueStatement(int Line) : TemplateStatement(Line);

/// <summary>
/// A body rendered in place, for Hugging Face's <c>{% generation %}</c> marker, which only tags the
/// assistant span for training masks and has no effect on the rendered text.
/// </summary>
internal sealed record InlineBlockStatement(IReadOnlyList<TemplateStatement> Body, int Line) : TemplateStatement(Line);
