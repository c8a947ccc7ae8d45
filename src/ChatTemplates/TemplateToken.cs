namespace LlmServer.ChatTemplates;

internal enum TemplateTokenKind
{
    /// <summary>Literal output between tags, already trimmed by the whitespace-control rules.</summary>
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    /// <summary>A string literal; <see cref="TemplateToken.Value"/> holds the decoded text.</summary>
    String,
    /// <summary>An integer literal; <see cref="TemplateToken.Value"/> holds it in decimal.</summary>
    Integer,
    Float,
    Operator,
    EndOfTemplate,
}

/// <param name="Line">1-based line in the template source, for error messages.</param>
internal readonly record struct TemplateToken(TemplateTokenKind Kind, string Value, int Line)
{
    public bool IsOperator(string symbol) => Kind == TemplateTokenKind.Operator && Value == symbol;

    public bool IsName(string name) => Kind == TemplateTokenKind.Name && Value == name;

    public string Describe() => Kind switch
    {
        TemplateTokenKind.EndOfTemplate => "end of template",
        TemplateTokenKind.VariableEnd => "'}}'",
        TemplateTokenKind.BlockEnd => "'%}'",
        TemplateTokenKind.VariableBegin => "'{{'",
        TemplateTokenKind.BlockBegin => "'{%'",
        TemplateTokenKind.String => "string literal",
        TemplateTokenKind.Text => "template text",
        _ => $"'{Value}'",
    };
}
