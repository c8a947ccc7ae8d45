namespace LlmServer.ChatTemplates;

/// <summary>Jinja tests: the right-hand side of <c>value is defined</c>, <c>value is not none</c>, ...</summary>
internal static class TemplateTestPredicates
{
    private static readonly Dictionary<string, Func<object?, TemplateArguments, bool>> Tests = new(StringComparer.Ordinal)
    {
        ["defined"] = (value, _) => value is not UndefinedValue,
        ["undefined"] = (value, _) => value is UndefinedValue,
        ["none"] = (value, _) => value is null,
        ["string"] = (value, _) => value is string,
        ["number"] = (value, _) => TemplateValue.IsNumber(value),
        ["integer"] = (value, _) => value is long,
        ["float"] = (value, _) => value is double,
        ["boolean"] = (value, _) => value is bool,
        ["true"] = (value, _) => value is true,
        ["false"] = (value, _) => value is false,
        ["mapping"] = (value, _) => value is OrderedDictionary<string, object?>,
        ["sequence"] = (value, _) => value is string or List<object?> or OrderedDictionary<string, object?>,
        ["iterable"] = (value, _) => value is string or List<object?> or OrderedDictionary<string, object?> or UndefinedValue,
        ["callable"] = (value, _) => value is TemplateFunction,
        ["lower"] = (value, _) => value is string s && s.Any(char.IsLower) && !s.Any(char.IsUpper),
        ["upper"] = (value, _) => value is string s && s.Any(char.IsUpper) && !s.Any(char.IsLower),
        ["even"] = (value, _) => TemplateValue.ToLong(value) % 2 == 0,
        ["odd"] = (value, _) => TemplateValue.ToLong(value) % 2 != 0,
        ["divisibleby"] = (value, args) => TemplateValue.AreEqual(
            TemplateOperators.Apply(BinaryOperator.Modulo, value, args.Required(0, "num", "divisibleby")), 0L),
        ["eq"] = Comparison(ComparisonOperator.Equal),
        ["equalto"] = Comparison(ComparisonOperator.Equal),
        ["ne"] = Comparison(ComparisonOperator.NotEqual),
        ["lt"] = Comparison(ComparisonOperator.Less),
        ["lessthan"] = Comparison(ComparisonOperator.Less),
        ["le"] = Comparison(ComparisonOperator.LessOrEqual),
        ["gt"] = Comparison(ComparisonOperator.Greater),
        ["greaterthan"] = Comparison(ComparisonOperator.Greater),
        ["ge"] = Comparison(ComparisonOperator.GreaterOrEqual),
        ["in"] = Comparison(ComparisonOperator.In),
        ["sameas"] = (value, args) => IsSameObject(value, args.Required(0, "other", "sameas")),
    };

    public static bool Exists(string name) => Tests.ContainsKey(name);

    public static bool Evaluate(string name, object? value, TemplateArguments arguments) =>
        Tests.TryGetValue(name, out var test)
            ? test(value, arguments)
            : throw new TemplateRuntimeException($"No test named '{name}'");

    private static Func<object?, TemplateArguments, bool> Comparison(ComparisonOperator op) =>
        (value, args) => TemplateOperators.Compare(op, value, args.Required(0, "other", "comparison test"));

    // Python's `is`: singletons and interned scalars compare by value, everything else by identity.
    private static bool IsSameObject(object? left, object? right) => (left, right) switch
    {
        (null, null) => true,
        (bool a, bool b) => a == b,
        (long a, long b) => a == b,
        _ => ReferenceEquals(left, right),
    };
}
