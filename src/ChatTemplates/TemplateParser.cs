using System.Globalization;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Recursive-descent parser from tokens to statement and expression trees. Operator precedence and
/// the places that accept tuples or inline <c>if</c> follow Jinja's parser, so a template parses the
/// same way it does under Hugging Face's <c>apply_chat_template</c>. Unknown filters and tests are
/// rejected here, as Jinja does at compile time, so a broken template fails when the model loads.
/// </summary>
internal sealed class TemplateParser
{
    private static readonly Dictionary<string, ComparisonOperator> ComparisonSymbols = new(StringComparer.Ordinal)
    {
        ["=="] = ComparisonOperator.Equal,
        ["!="] = ComparisonOperator.NotEqual,
        ["<"] = ComparisonOperator.Less,
        ["<="] = ComparisonOperator.LessOrEqual,
        [">"] = ComparisonOperator.Greater,
        [">="] = ComparisonOperator.GreaterOrEqual,
    };

    private readonly List<TemplateToken> _tokens;
    private int _index;
    private int _loopDepth;

    private TemplateParser(List<TemplateToken> tokens)
    {
        _tokens = tokens;
    }

    private TemplateToken Current => _tokens[_index];

    public static IReadOnlyList<TemplateStatement> Parse(string source)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source));
        var (body, _) = parser.ParseStatements();
        return body;
    }

    /// <summary>
    /// Parses statements until one of <paramref name="endTags"/> opens a block tag, and returns which one.
    /// The end tag's name is left as the current token for the caller to consume.
    /// </summary>
    private (List<TemplateStatement> Body, string EndTag) ParseStatements(int openedAt = 0, params string[] endTags)
    {
        var body = new List<TemplateStatement>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TemplateTokenKind.Text:
                    Advance();
                    body.Add(new TextStatement(token.Value, token.Line));
                    break;
                case TemplateTokenKind.VariableBegin:
                    Advance();
                    var expression = ParseTuple(allowConditional: true);
                    Expect(TemplateTokenKind.VariableEnd);
                    body.Add(new OutputStatement(expression, token.Line));
                    break;
                case TemplateTokenKind.BlockBegin:
                    Advance();
                    if (Current.Kind == TemplateTokenKind.Name && endTags.Contains(Current.Value))
                    {
                        return (body, Current.Value);
                    }

                    body.Add(ParseBlockTag());
                    break;
                case TemplateTokenKind.EndOfTemplate:
                    if (endTags.Length > 0)
                    {
                        throw Error(
                            $"unexpected end of template; expected {string.Join(" or ", endTags.Select(t => $"'{t}'"))} for the block opened on line {openedAt}",
                            token);
                    }

                    return (body, "");
                default:
                    throw Error($"unexpected {token.Describe()}", token);
            }
        }
    }

    private TemplateStatement ParseBlockTag()
    {
        var token = Current;
        if (token.Kind != TemplateTokenKind.Name)
        {
            throw Error($"expected a tag name, found {token.Describe()}", token);
        }

        Advance();
        switch (token.Value)
        {
            case "if":
                return ParseIf(token.Line);
            case "for":
                return ParseFor(token.Line);
            case "set":
                return ParseSet(token.Line);
            case "macro":
                return ParseMacro(token.Line);
            case "break" or "continue":
                if (_loopDepth == 0)
                {
                    throw Error($"'{token.Value}' is only allowed inside a for loop", token);
                }

                Expect(TemplateTokenKind.BlockEnd);
                return token.Value == "break" ? new BreakStatement(token.Line) : new ContinueStatement(token.Line);
            case "generation":
                Expect(TemplateTokenKind.BlockEnd);
                var (body, _) = ParseStatements(token.Line, "endgeneration");
                ExpectEndTag("endgeneration");
                return new InlineBlockStatement(body, token.Line);
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endgeneration":
                throw Error($"unexpected '{token.Value}' without a matching opening tag", token);
            default:
                throw Error($"unknown tag '{token.Value}'", token);
        }
    }

    private IfStatement ParseIf(int line)
    {
        var branches = new List<ConditionalBranch>();
        List<TemplateStatement> elseBody = [];
        var condition = ParseExpression(allowConditional: false);
        while (true)
        {
            Expect(TemplateTokenKind.BlockEnd);
            var (body, endTag) = ParseStatements(line, "elif", "else", "endif");
            branches.Add(new ConditionalBranch(condition, body));
            Advance();
            if (endTag == "elif")
            {
                condition = ParseExpression(allowConditional: false);
                continue;
            }

            if (endTag == "else")
            {
                Expect(TemplateTokenKind.BlockEnd);
                (elseBody, _) = ParseStatements(line, "endif");
                Advance();
            }

            Expect(TemplateTokenKind.BlockEnd);
            return new IfStatement(branches, elseBody, line);
        }
    }

    private ForStatement ParseFor(int line)
    {
        var targets = ParseTargetNames();
        ExpectName("in");
        // The iterable takes no inline `if`, because `for x in xs if cond` is the loop filter.
        var iterable = ParseTuple(allowConditional: false, endNames: ["recursive"]);
        TemplateExpression? filter = null;
        if (Current.IsName("if"))
        {
            Advance();
            filter = ParseExpression(allowConditional: true);
        }

        if (Current.IsName("recursive"))
        {
            throw Error("recursive for loops are not supported", Current);
        }

        Expect(TemplateTokenKind.BlockEnd);
        _loopDepth++;
        var (body, endTag) = ParseStatements(line, "endfor", "else");
        _loopDepth--;
        List<TemplateStatement> elseBody = [];
        Advance();
        if (endTag == "else")
        {
            Expect(TemplateTokenKind.BlockEnd);
            (elseBody, _) = ParseStatements(line, "endfor");
            Advance();
        }

        Expect(TemplateTokenKind.BlockEnd);
        return new ForStatement(targets, iterable, filter, body, elseBody, line);
    }

    private TemplateStatement ParseSet(int line)
    {
        var nameToken = ExpectKind(TemplateTokenKind.Name);
        if (Current.IsOperator("."))
        {
            Advance();
            string attribute = ExpectKind(TemplateTokenKind.Name).Value;
            ExpectOperator("=");
            var value = ParseTuple(allowConditional: true);
            Expect(TemplateTokenKind.BlockEnd);
            return new SetNamespaceAttributeStatement(nameToken.Value, attribute, value, line);
        }

        var targets = new List<string> { nameToken.Value };
        while (Current.IsOperator(","))
        {
            Advance();
            targets.Add(ExpectKind(TemplateTokenKind.Name).Value);
        }

        if (Current.IsOperator("="))
        {
            Advance();
            var value = ParseTuple(allowConditional: true);
            Expect(TemplateTokenKind.BlockEnd);
            return new SetStatement(targets, value, line);
        }

        if (targets.Count > 1)
        {
            throw Error("a block set can only assign one name", Current);
        }

        Expect(TemplateTokenKind.BlockEnd);
        var (body, _) = ParseStatements(line, "endset");
        ExpectEndTag("endset");
        return new SetBlockStatement(nameToken.Value, body, line);
    }

    private MacroStatement ParseMacro(int line)
    {
        string name = ExpectKind(TemplateTokenKind.Name).Value;
        ExpectOperator("(");
        var parameters = new List<MacroParameter>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")"))
                {
                    break;
                }
            }

            string parameter = ExpectKind(TemplateTokenKind.Name).Value;
            TemplateExpression? defaultValue = null;
            if (Current.IsOperator("="))
            {
                Advance();
                defaultValue = ParseExpression(allowConditional: true);
            }

            parameters.Add(new MacroParameter(parameter, defaultValue));
        }

        Advance();
        Expect(TemplateTokenKind.BlockEnd);
        int outerLoopDepth = _loopDepth;
        _loopDepth = 0;
        var (body, _) = ParseStatements(line, "endmacro");
        _loopDepth = outerLoopDepth;
        ExpectEndTag("endmacro");
        return new MacroStatement(name, parameters, body, line);
    }

    /// <summary>Loop and set targets: <c>x</c>, <c>key, value</c> or <c>(key, value)</c>.</summary>
    private List<string> ParseTargetNames()
    {
        bool parenthesized = Current.IsOperator("(");
        if (parenthesized)
        {
            Advance();
        }

        var names = new List<string> { ExpectKind(TemplateTokenKind.Name).Value };
        while (Current.IsOperator(","))
        {
            Advance();
            if (Current.Kind != TemplateTokenKind.Name)
            {
                break;
            }

            names.Add(ExpectKind(TemplateTokenKind.Name).Value);
        }

        if (parenthesized)
        {
            ExpectOperator(")");
        }

        return names;
    }

    /// <summary>An expression or a bare comma-separated tuple (<c>{{ a, b }}</c>, <c>set x = 1, 2</c>).</summary>
    private TemplateExpression ParseTuple(bool allowConditional, string[]? endNames = null)
    {
        int line = Current.Line;
        var items = new List<TemplateExpression>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0)
            {
                ExpectOperator(",");
            }

            if (IsTupleEnd(endNames))
            {
                break;
            }

            items.Add(ParseExpression(allowConditional));
            if (Current.IsOperator(","))
            {
                isTuple = true;
            }
            else
            {
                break;
            }
        }

        if (!isTuple)
        {
            return items.Count == 1 ? items[0] : throw Error($"expected an expression, found {Current.Describe()}", Current);
        }

        return new ListExpression(items, IsTuple: true, line);
    }

    private bool IsTupleEnd(string[]? endNames) =>
        Current.Kind is TemplateTokenKind.VariableEnd or TemplateTokenKind.BlockEnd
        || Current.IsOperator(")")
        || (endNames is not null && Current.Kind == TemplateTokenKind.Name && endNames.Contains(Current.Value));

    private TemplateExpression ParseExpression(bool allowConditional) =>
        allowConditional ? ParseConditional() : ParseOr();

    private TemplateExpression ParseConditional()
    {
        var expression = ParseOr();
        while (Current.IsName("if"))
        {
            int line = Current.Line;
            Advance();
            var condition = ParseOr();
            TemplateExpression? otherwise = null;
            if (Current.IsName("else"))
            {
                Advance();
                otherwise = ParseConditional();
            }

            expression = new ConditionalExpression(condition, expression, otherwise, line);
        }

        return expression;
    }

    private TemplateExpression ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            int line = Current.Line;
            Advance();
            left = new LogicalExpression(IsAnd: false, left, ParseAnd(), line);
        }

        return left;
    }

    private TemplateExpression ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            int line = Current.Line;
            Advance();
            left = new LogicalExpression(IsAnd: true, left, ParseNot(), line);
        }

        return left;
    }

    private TemplateExpression ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Current.Line;
            Advance();
            return new UnaryExpression(UnaryOperator.Not, ParseNot(), line);
        }

        return ParseCompare();
    }

    private TemplateExpression ParseCompare()
    {
        int line = Current.Line;
        var first = ParseAdditive();
        var rest = new List<KeyValuePair<ComparisonOperator, TemplateExpression>>();
        while (true)
        {
            ComparisonOperator op;
            if (Current.Kind == TemplateTokenKind.Operator && ComparisonSymbols.TryGetValue(Current.Value, out var symbolOp))
            {
                op = symbolOp;
                Advance();
            }
            else if (Current.IsName("in"))
            {
                op = ComparisonOperator.In;
                Advance();
            }
            else if (Current.IsName("not") && Peek(1).IsName("in"))
            {
                op = ComparisonOperator.NotIn;
                Advance();
                Advance();
            }
            else
            {
                break;
            }

            rest.Add(new(op, ParseAdditive()));
        }

        return rest.Count == 0 ? first : new CompareExpression(first, rest, line);
    }

    private TemplateExpression ParseAdditive()
    {
        var left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            var op = Current.Value == "+" ? BinaryOperator.Add : BinaryOperator.Subtract;
            int line = Current.Line;
            Advance();
            left = new BinaryExpression(op, left, ParseConcat(), line);
        }

        return left;
    }

    // Jinja binds `~` tighter than `+` and looser than `*`.
    private TemplateExpression ParseConcat()
    {
        int line = Current.Line;
        var parts = new List<TemplateExpression> { ParseMultiplicative() };
        while (Current.IsOperator("~"))
        {
            Advance();
            parts.Add(ParseMultiplicative());
        }

        return parts.Count == 1 ? parts[0] : new ConcatExpression(parts, line);
    }

    private TemplateExpression ParseMultiplicative()
    {
        var left = ParsePower();
        while (Current.Kind == TemplateTokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Current.Value switch
            {
                "*" => BinaryOperator.Multiply,
                "/" => BinaryOperator.Divide,
                "//" => BinaryOperator.FloorDivide,
                _ => BinaryOperator.Modulo,
            };
            int line = Current.Line;
            Advance();
            left = new BinaryExpression(op, left, ParsePower(), line);
        }

        return left;
    }

    private TemplateExpression ParsePower()
    {
        var left = ParseUnary(withFilters: true);
        while (Current.IsOperator("**"))
        {
            int line = Current.Line;
            Advance();
            left = new BinaryExpression(BinaryOperator.Power, left, ParseUnary(withFilters: true), line);
        }

        return left;
    }

    /// <summary>
    /// Unary minus applies before filters: Jinja parses <c>-x | abs</c> as <c>(-x) | abs</c>.
    /// </summary>
    private TemplateExpression ParseUnary(bool withFilters)
    {
        int line = Current.Line;
        TemplateExpression expression;
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            var op = Current.Value == "-" ? UnaryOperator.Negate : UnaryOperator.Plus;
            Advance();
            expression = new UnaryExpression(op, ParseUnary(withFilters: false), line);
        }
        else
        {
            expression = ParsePrimary();
        }

        expression = ParsePostfix(expression);
        return withFilters ? ParseFiltersAndTests(expression) : expression;
    }

    private TemplateExpression ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TemplateTokenKind.Name:
                Advance();
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpression(true, token.Line),
                    "false" or "False" => new LiteralExpression(false, token.Line),
                    "none" or "None" => new LiteralExpression(null, token.Line),
                    _ => new NameExpression(token.Value, token.Line),
                };
            case TemplateTokenKind.String:
                // Adjacent literals concatenate, as in Python: "a" "b" is "ab".
                string text = token.Value;
                Advance();
                while (Current.Kind == TemplateTokenKind.String)
                {
                    text += Current.Value;
                    Advance();
                }

                return new LiteralExpression(text, token.Line);
            case TemplateTokenKind.Integer:
                Advance();
                return new LiteralExpression(long.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TemplateTokenKind.Float:
                Advance();
                return new LiteralExpression(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TemplateTokenKind.Operator when token.Value == "(":
                Advance();
                var inner = Current.IsOperator(")") ? new ListExpression([], IsTuple: true, token.Line) : ParseTuple(allowConditional: true);
                ExpectOperator(")");
                return inner;
            case TemplateTokenKind.Operator when token.Value == "[":
                Advance();
                var items = ParseSequence("]", () => ParseExpression(allowConditional: true));
                return new ListExpression(items, IsTuple: false, token.Line);
            case TemplateTokenKind.Operator when token.Value == "{":
                Advance();
                var entries = ParseSequence("}", () =>
                {
                    var key = ParseExpression(allowConditional: true);
                    ExpectOperator(":");
                    return new KeyValuePair<TemplateExpression, TemplateExpression>(key, ParseExpression(allowConditional: true));
                });
                return new DictExpression(entries, token.Line);
            default:
                throw Error($"unexpected {token.Describe()}", token);
        }
    }

    /// <summary>Comma-separated items up to <paramref name="close"/>, allowing a trailing comma.</summary>
    private List<T> ParseSequence<T>(string close, Func<T> parseItem)
    {
        var items = new List<T>();
        while (!Current.IsOperator(close))
        {
            if (items.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(close))
                {
                    break;
                }
            }

            items.Add(parseItem());
        }

        Advance();
        return items;
    }

    private TemplateExpression ParsePostfix(TemplateExpression expression)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("."))
            {
                Advance();
                var member = Current;
                Advance();
                expression = member.Kind switch
                {
                    TemplateTokenKind.Name => new AttributeExpression(expression, member.Value, token.Line),
                    // messages.0 is an index, as in Jinja.
                    TemplateTokenKind.Integer => new IndexExpression(
                        expression, new LiteralExpression(long.Parse(member.Value, CultureInfo.InvariantCulture), token.Line), token.Line),
                    _ => throw Error($"expected an attribute name after '.', found {member.Describe()}", member),
                };
            }
            else if (token.IsOperator("["))
            {
                Advance();
                expression = ParseSubscript(expression, token.Line);
            }
            else if (token.IsOperator("("))
            {
                expression = new CallExpression(expression, ParseCallArguments(), token.Line);
            }
            else
            {
                return expression;
            }
        }
    }

    private TemplateExpression ParseSubscript(TemplateExpression target, int line)
    {
        TemplateExpression? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression(allowConditional: true);
            if (!Current.IsOperator(":"))
            {
                ExpectOperator("]");
                return new IndexExpression(target, start, line);
            }
        }

        Advance();
        TemplateExpression? stop = null;
        TemplateExpression? step = null;
        if (!Current.IsOperator("]") && !Current.IsOperator(":"))
        {
            stop = ParseExpression(allowConditional: true);
        }

        if (Current.IsOperator(":"))
        {
            Advance();
            if (!Current.IsOperator("]"))
            {
                step = ParseExpression(allowConditional: true);
            }
        }

        ExpectOperator("]");
        return new SliceExpression(target, start, stop, step, line);
    }

    private TemplateExpression ParseFiltersAndTests(TemplateExpression expression)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("|"))
            {
                Advance();
                var nameToken = ExpectKind(TemplateTokenKind.Name);
                if (!TemplateFilters.Exists(nameToken.Value))
                {
                    throw Error($"no filter named '{nameToken.Value}'", nameToken);
                }

                var arguments = Current.IsOperator("(") ? ParseCallArguments() : ArgumentList.Empty;
                expression = new FilterExpression(expression, nameToken.Value, arguments, token.Line);
            }
            else if (token.IsName("is"))
            {
                Advance();
                expression = ParseTest(expression, token.Line);
            }
            else if (token.IsOperator("("))
            {
                expression = new CallExpression(expression, ParseCallArguments(), token.Line);
            }
            else
            {
                return expression;
            }
        }
    }

    private TestExpression ParseTest(TemplateExpression target, int line)
    {
        bool negated = false;
        if (Current.IsName("not"))
        {
            negated = true;
            Advance();
        }

        var nameToken = ExpectKind(TemplateTokenKind.Name);
        if (!TemplateTestPredicates.Exists(nameToken.Value))
        {
            throw Error($"no test named '{nameToken.Value}'", nameToken);
        }

        var arguments = ArgumentList.Empty;
        if (Current.IsOperator("("))
        {
            arguments = ParseCallArguments();
        }
        else if (StartsTestArgument(Current))
        {
            // Jinja accepts one bare argument: `loop.index is divisibleby 3`.
            arguments = new ArgumentList([ParsePostfix(ParsePrimary())], []);
        }

        return new TestExpression(target, nameToken.Value, arguments, negated, line);
    }

    private static bool StartsTestArgument(TemplateToken token) => token.Kind switch
    {
        TemplateTokenKind.Name => token.Value is not ("else" or "or" or "and" or "is" or "if" or "in" or "not"),
        TemplateTokenKind.String or TemplateTokenKind.Integer or TemplateTokenKind.Float => true,
        TemplateTokenKind.Operator => token.Value is "[" or "{",
        _ => false,
    };

    private ArgumentList ParseCallArguments()
    {
        ExpectOperator("(");
        var positional = new List<TemplateExpression>();
        var named = new List<KeyValuePair<string, TemplateExpression>>();
        while (!Current.IsOperator(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")"))
                {
                    break;
                }
            }

            if (Current.Kind == TemplateTokenKind.Name && Peek(1).IsOperator("="))
            {
                string name = Current.Value;
                Advance();
                Advance();
                named.Add(new(name, ParseExpression(allowConditional: true)));
            }
            else if (named.Count > 0)
            {
                throw Error("positional argument follows keyword argument", Current);
            }
            else
            {
                positional.Add(ParseExpression(allowConditional: true));
            }
        }

        Advance();
        return new ArgumentList(positional, named);
    }

    private TemplateToken Peek(int offset) => _tokens[Math.Min(_index + offset, _tokens.Count - 1)];

    private void Advance()
    {
        if (_index < _tokens.Count - 1)
        {
            _index++;
        }
    }

    private TemplateToken ExpectKind(TemplateTokenKind kind)
    {
        var token = Current;
        if (token.Kind != kind)
        {
            string expected = kind == TemplateTokenKind.Name ? "a name" : new TemplateToken(kind, "", 0).Describe();
            throw Error($"expected {expected}, found {token.Describe()}", token);
        }

        Advance();
        return token;
    }

    private void Expect(TemplateTokenKind kind) => ExpectKind(kind);

    private void ExpectOperator(string symbol)
    {
        if (!Current.IsOperator(symbol))
        {
            throw Error($"expected '{symbol}', found {Current.Describe()}", Current);
        }

        Advance();
    }

    private void ExpectName(string name)
    {
        if (!Current.IsName(name))
        {
            throw Error($"expected '{name}', found {Current.Describe()}", Current);
        }

        Advance();
    }

    private void ExpectEndTag(string name)
    {
        ExpectName(name);
        Expect(TemplateTokenKind.BlockEnd);
    }

    private static ChatTemplateException Error(string message, TemplateToken token) =>
        ChatTemplateException.Syntax(message, token.Line);
}
