namespace LlmServer.ChatTemplates;

/// <summary>
/// Anything callable from a template: globals such as <c>range</c>, macros, <c>loop.cycle</c> and
/// methods already bound to their receiver (<c>content.strip</c>).
/// </summary>
internal sealed class TemplateFunction(string name, Func<TemplateArguments, object?> body)
{
    public string Name { get; } = name;

    public object? Invoke(TemplateArguments arguments) => body(arguments);
}
