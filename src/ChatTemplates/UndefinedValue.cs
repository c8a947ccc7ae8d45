namespace LlmServer.ChatTemplates;

/// <summary>
/// Jinja's <c>Undefined</c>: the result of reading a variable, key or attribute that does not exist.
/// It is falsy, renders as an empty string, has length 0 and iterates as an empty sequence, so
/// templates can probe optional fields (<c>message.name is defined</c>). Reading an attribute of it,
/// calling it or computing with it is an error, exactly as under Jinja's default Undefined.
/// </summary>
internal sealed class UndefinedValue
{
    /// <param name="reason">The error raised if the value is misused, e.g. <c>'foo' is undefined</c>.</param>
    public UndefinedValue(string reason)
    {
        Reason = reason;
    }

    public string Reason { get; }

    public static UndefinedValue ForName(string name) => new($"'{name}' is undefined");

    public TemplateRuntimeException ToError() => new(Reason);
}
