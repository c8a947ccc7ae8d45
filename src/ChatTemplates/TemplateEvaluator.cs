using System.Text;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Walks a parsed template and writes its output. One instance renders once, so a parsed
/// <see cref="ChatTemplate"/> can be rendered from many requests at the same time.
/// </summary>
internal sealed class TemplateEvaluator
{
    // Macros may call themselves; a bound turns runaway recursion into an error instead of a stack overflow.
    private const int MaxMacroDepth = 64;

    private int _macroDepth;

    private TemplateEvaluator()
    {
    }

    /// <summary>What a statement asks of the loop around it.</summary>
    private enum Completion
    {
        Normal,
        Break,
        Continue,
    }

    public static string Render(IReadOnlyList<TemplateStatement> template, TemplateScope scope)
    {
        var output = new StringBuilder();
        new TemplateEvaluator().ExecuteAll(template, scope, output);
        return output.ToString();
    }

    private Completion ExecuteAll(IReadOnlyList<TemplateStatement> statements, TemplateScope scope, StringBuilder output)
    {
        foreach (var statement in statements)
        {
            var completion = Execute(statement, scope, output);
            if (completion != Completion.Normal)
            {
                return completion;
            }
        }

        return Completion.Normal;
    }

    private Completion Execute(TemplateStatement statement, TemplateScope scope, StringBuilder output)
    {
        try
        {
            switch (statement)
            {
                case TextStatement text:
                    output.Append(text.Text);
                    return Completion.Normal;
                case OutputStatement print:
                    output.Append(TemplateValue.ToText(Evaluate(print.Expression, scope)));
                    return Completion.Normal;
                case IfStatement conditional:
                    foreach (var branch in conditional.Branches)
                    {
                        if (TemplateValue.IsTruthy(Evaluate(branch.Condition, scope)))
                        {
                            return ExecuteAll(branch.Body, scope, output);
                        }
                    }

                    return ExecuteAll(conditional.ElseBody, scope, output);
                case ForStatement loop:
                    ExecuteFor(loop, scope, output);
                    return Completion.Normal;
                case SetStatement set:
                    Assign(set.Targets, Evaluate(set.Value, scope), scope);
                    return Completion.Normal;
                case SetNamespaceAttributeStatement set:
                    if (!scope.TryGet(set.Namespace, out var target) || target is not NamespaceValue ns)
                    {
                        throw new TemplateRuntimeException($"cannot assign attribute on non-namespace object '{set.Namespace}'");
                    }

                    ns.Attributes[set.Attribute] = Evaluate(set.Value, scope);
                    return Completion.Normal;
                case SetBlockStatement set:
                    var captured = new StringBuilder();
                    ExecuteAll(set.Body, scope, captured);
                    scope.Set(set.Name, captured.ToString());
                    return Completion.Normal;
                case MacroStatement macro:
                    scope.Set(macro.Name, DefineMacro(macro, scope));
                    return Completion.Normal;
                case BreakStatement:
                    return Completion.Break;
                case ContinueStatement:
                    return Completion.Continue;
                case InlineBlockStatement block:
                    return ExecuteAll(block.Body, scope, output);
                default:
                    throw new InvalidOperationException($"Unhandled statement {statement.GetType().Name}");
            }
        }
        catch (TemplateRuntimeException error)
        {
            throw ChatTemplateException.Runtime(error.Message, statement.Line);
        }
    }

    private void ExecuteFor(ForStatement loop, TemplateScope scope, StringBuilder output)
    {
        var items = TemplateValue.Iterate(Evaluate(loop.Iterable, scope)).ToList();
        if (loop.Filter is not null)
        {
            items = items.Where(item =>
            {
                var filterScope = scope.CreateChild();
                Assign(loop.Targets, item, filterScope);
                return TemplateValue.IsTruthy(Evaluate(loop.Filter, filterScope));
            }).ToList();
        }

        if (items.Count == 0)
        {
            ExecuteAll(loop.ElseBody, scope, output);
            return;
        }

        for (int i = 0; i < items.Count; i++)
        {
            var iterationScope = scope.CreateChild();
            Assign(loop.Targets, items[i], iterationScope);
            iterationScope.Set("loop", new LoopContext(items, i));
            if (ExecuteAll(loop.Body, iterationScope, output) == Completion.Break)
            {
                break;
            }
        }
    }

    private static void Assign(IReadOnlyList<string> targets, object? value, TemplateScope scope)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], value);
            return;
        }

        var values = TemplateValue.Iterate(value).ToList();
        if (values.Count != targets.Count)
        {
            throw new TemplateRuntimeException(
                $"cannot unpack {values.Count} value(s) into {targets.Count} target(s)");
        }

        for (int i = 0; i < targets.Count; i++)
        {
            scope.Set(targets[i], values[i]);
        }
    }

    private TemplateFunction DefineMacro(MacroStatement macro, TemplateScope definitionScope) =>
        new(macro.Name, arguments =>
        {
            if (arguments.Positional.Count > macro.Parameters.Count)
            {
                throw new TemplateRuntimeException(
                    $"macro '{macro.Name}' takes not more than {macro.Parameters.Count} argument(s)");
            }

            var callScope = definitionScope.CreateChild();
            var parameterNames = macro.Parameters.Select(parameter => parameter.Name).ToArray();
            arguments.ExpectOnly(macro.Name, parameterNames);
            for (int i = 0; i < macro.Parameters.Count; i++)
            {
                var parameter = macro.Parameters[i];
                object? value = arguments.TryGet(i, parameter.Name, out var passed)
                    ? passed
                    : parameter.Default is null ? UndefinedValue.ForName(parameter.Name) : Evaluate(parameter.Default, callScope);
                callScope.Set(parameter.Name, value);
            }

            if (++_macroDepth > MaxMacroDepth)
            {
                throw new TemplateRuntimeException($"macro '{macro.Name}' recursed more than {MaxMacroDepth} levels");
            }

            try
            {
                var output = new StringBuilder();
                ExecuteAll(macro.Body, callScope, output);
                return output.ToString();
            }
            finally
            {
                _macroDepth--;
            }
        });

    private object? Evaluate(TemplateExpression expression, TemplateScope scope)
    {
        switch (expression)
        {
            case LiteralExpression literal:
                return literal.Value;
            case NameExpression name:
                return scope.TryGet(name.Name, out var value) ? value : UndefinedValue.ForName(name.Name);
            case ListExpression list:
                var items = list.Items.Select(item => Evaluate(item, scope));
                return list.IsTuple ? new TemplateTuple(items) : items.ToList();
            case DictExpression dict:
                return EvaluateDict(dict, scope);
            case AttributeExpression attribute:
                return TemplateMemberAccess.GetAttribute(Evaluate(attribute.Target, scope), attribute.Attribute);
            case IndexExpression index:
                return TemplateMemberAccess.GetItem(Evaluate(index.Target, scope), Evaluate(index.Index, scope));
            case SliceExpression slice:
                return TemplateMemberAccess.Slice(
                    Evaluate(slice.Target, scope),
                    EvaluateOptional(slice.Start, scope),
                    EvaluateOptional(slice.Stop, scope),
                    EvaluateOptional(slice.Step, scope));
            case UnaryExpression unary:
                return TemplateOperators.Apply(unary.Operator, Evaluate(unary.Operand, scope));
            case BinaryExpression binary:
                return TemplateOperators.Apply(binary.Operator, Evaluate(binary.Left, scope), Evaluate(binary.Right, scope));
            case LogicalExpression logical:
                var left = Evaluate(logical.Left, scope);
                return TemplateValue.IsTruthy(left) == logical.IsAnd ? Evaluate(logical.Right, scope) : left;
            case ConcatExpression concat:
                return string.Concat(concat.Parts.Select(part => TemplateValue.ToText(Evaluate(part, scope))));
            case CompareExpression compare:
                return EvaluateComparison(compare, scope);
            case ConditionalExpression conditional:
                if (TemplateValue.IsTruthy(Evaluate(conditional.Condition, scope)))
                {
                    return Evaluate(conditional.WhenTrue, scope);
                }

                return conditional.WhenFalse is null
                    ? new UndefinedValue("the inline if expression evaluated to false and no else section was defined.")
                    : Evaluate(conditional.WhenFalse, scope);
            case CallExpression call:
                return Call(Evaluate(call.Callee, scope), EvaluateArguments(call.Arguments, scope));
            case FilterExpression filter:
                return TemplateFilters.Apply(filter.Name, Evaluate(filter.Target, scope), EvaluateArguments(filter.Arguments, scope));
            case TestExpression test:
                bool passed = TemplateTestPredicates.Evaluate(test.Name, Evaluate(test.Target, scope), EvaluateArguments(test.Arguments, scope));
                return passed != test.Negated;
            default:
                throw new InvalidOperationException($"Unhandled expression {expression.GetType().Name}");
        }
    }

    private object? EvaluateOptional(TemplateExpression? expression, TemplateScope scope) =>
        expression is null ? null : Evaluate(expression, scope);

    private OrderedDictionary<string, object?> EvaluateDict(DictExpression dict, TemplateScope scope)
    {
        var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (keyExpression, valueExpression) in dict.Entries)
        {
            if (Evaluate(keyExpression, scope) is not string key)
            {
                throw new TemplateRuntimeException("only string keys are supported in dict literals");
            }

            result[key] = Evaluate(valueExpression, scope);
        }

        return result;
    }

    private bool EvaluateComparison(CompareExpression compare, TemplateScope scope)
    {
        var left = Evaluate(compare.First, scope);
        foreach (var (op, rightExpression) in compare.Rest)
        {
            var right = Evaluate(rightExpression, scope);
            if (!TemplateOperators.Compare(op, left, right))
            {
                return false;
            }

            left = right;
        }

        return true;
    }

    private TemplateArguments EvaluateArguments(ArgumentList arguments, TemplateScope scope)
    {
        if (arguments.Positional.Count == 0 && arguments.Named.Count == 0)
        {
            return TemplateArguments.None;
        }

        return new TemplateArguments(
            arguments.Positional.Select(argument => Evaluate(argument, scope)).ToList(),
            arguments.Named.Select(pair => new KeyValuePair<string, object?>(pair.Key, Evaluate(pair.Value, scope))).ToList());
    }

    private static object? Call(object? callee, TemplateArguments arguments) => callee switch
    {
        TemplateFunction function => function.Invoke(arguments),
        UndefinedValue undefined => throw new TemplateRuntimeException(undefined.Reason),
        _ => throw new TemplateRuntimeException($"'{TemplateValue.TypeName(callee)}' object is not callable"),
    };
}
