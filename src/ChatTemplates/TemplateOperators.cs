using System.Text;

namespace LlmServer.ChatTemplates;

internal enum BinaryOperator
{
    Add,
    Subtract,
    Multiply,
    Divide,
    FloorDivide,
    Modulo,
    Power,
}

internal enum UnaryOperator
{
    Not,
    Negate,
    Plus,
}

internal enum ComparisonOperator
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
    NotIn,
}

/// <summary>Arithmetic and comparison with Python's rules (floor division, sign of modulo, str * int).</summary>
internal static class TemplateOperators
{
    // Guards `'x' * n` so a template cannot exhaust memory; real prompts are far below this.
    private const long MaxRepeatedLength = 16 * 1024 * 1024;

    public static object? Apply(BinaryOperator op, object? left, object? right)
    {
        ThrowIfUndefined(left);
        ThrowIfUndefined(right);
        try
        {
            return op switch
            {
                BinaryOperator.Add => Add(left, right),
                BinaryOperator.Subtract => Numeric(op, left, right, (a, b) => checked(a - b), (a, b) => a - b),
                BinaryOperator.Multiply => Multiply(left, right),
                BinaryOperator.Divide => Divide(left, right),
                BinaryOperator.FloorDivide => Numeric(op, left, right, FloorDivide, (a, b) => Math.Floor(CheckedDivisor(a, b))),
                BinaryOperator.Modulo => Numeric(op, left, right, Modulo, Modulo),
                BinaryOperator.Power => Power(left, right),
                _ => throw new ArgumentOutOfRangeException(nameof(op)),
            };
        }
        catch (OverflowException)
        {
            throw new TemplateRuntimeException("integer overflow in template arithmetic");
        }
    }

    public static object? Apply(UnaryOperator op, object? operand) => (op, operand) switch
    {
        (UnaryOperator.Not, _) => !TemplateValue.IsTruthy(operand),
        (_, UndefinedValue undefined) => throw undefined.ToError(),
        (UnaryOperator.Negate, long l) => checked(-l),
        (UnaryOperator.Negate, double d) => -d,
        (UnaryOperator.Negate, bool b) => b ? -1L : 0L,
        (UnaryOperator.Plus, long or double) => operand,
        (UnaryOperator.Plus, bool b) => b ? 1L : 0L,
        _ => throw new TemplateRuntimeException(
            $"bad operand type for unary {(op == UnaryOperator.Negate ? '-' : '+')}: '{TemplateValue.TypeName(operand)}'"),
    };

    public static bool Compare(ComparisonOperator op, object? left, object? right) => op switch
    {
        ComparisonOperator.Equal => TemplateValue.AreEqual(left, right),
        ComparisonOperator.NotEqual => !TemplateValue.AreEqual(left, right),
        ComparisonOperator.Less => TemplateValue.Compare(left, right) < 0,
        ComparisonOperator.LessOrEqual => TemplateValue.Compare(left, right) <= 0,
        ComparisonOperator.Greater => TemplateValue.Compare(left, right) > 0,
        ComparisonOperator.GreaterOrEqual => TemplateValue.Compare(left, right) >= 0,
        ComparisonOperator.In => Contains(right, left),
        ComparisonOperator.NotIn => !Contains(right, left),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    /// <summary>Python's <c>item in container</c>: substring, list membership or dict key.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string text when item is string part => text.Contains(part, StringComparison.Ordinal),
        string => throw new TemplateRuntimeException(
            $"'in <string>' requires string as left operand, not {TemplateValue.TypeName(item)}"),
        List<object?> list => list.Any(element => TemplateValue.AreEqual(element, item)),
        OrderedDictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        UndefinedValue => false,
        _ => throw new TemplateRuntimeException(
            $"argument of type '{TemplateValue.TypeName(container)}' is not iterable"),
    };

    private static object? Add(object? left, object? right) => (left, right) switch
    {
        (string a, string b) => a + b,
        (List<object?> a, List<object?> b) => a.Concat(b).ToList(),
        _ => Numeric(BinaryOperator.Add, left, right, (a, b) => checked(a + b), (a, b) => a + b),
    };

    private static object? Multiply(object? left, object? right) => (left, right) switch
    {
        (string text, long or bool) => Repeat(text, TemplateValue.ToLong(right)),
        (long or bool, string text) => Repeat(text, TemplateValue.ToLong(left)),
        (List<object?> list, long or bool) => RepeatList(list, TemplateValue.ToLong(right)),
        _ => Numeric(BinaryOperator.Multiply, left, right, (a, b) => checked(a * b), (a, b) => a * b),
    };

    private static object? Divide(object? left, object? right)
    {
        RequireNumbers(BinaryOperator.Divide, left, right);
        return CheckedDivisor(TemplateValue.ToDouble(left), TemplateValue.ToDouble(right));
    }

    private static object? Power(object? left, object? right)
    {
        RequireNumbers(BinaryOperator.Power, left, right);
        if (left is double || right is double || TemplateValue.ToLong(right) < 0)
        {
            return Math.Pow(TemplateValue.ToDouble(left), TemplateValue.ToDouble(right));
        }

        long result = 1;
        long baseValue = TemplateValue.ToLong(left);
        for (long exponent = TemplateValue.ToLong(right); exponent > 0; exponent--)
        {
            result = checked(result * baseValue);
        }

        return result;
    }

    private static object? Numeric(
        BinaryOperator op, object? left, object? right, Func<long, long, long> onIntegers, Func<double, double, double> onFloats)
    {
        RequireNumbers(op, left, right);
        return left is double || right is double
            ? onFloats(TemplateValue.ToDouble(left), TemplateValue.ToDouble(right))
            : (object)onIntegers(TemplateValue.ToLong(left), TemplateValue.ToLong(right));
    }

    private static void RequireNumbers(BinaryOperator op, object? left, object? right)
    {
        if (!TemplateValue.IsNumber(left) || !TemplateValue.IsNumber(right))
        {
            throw new TemplateRuntimeException(
                $"unsupported operand type(s) for {Symbol(op)}: '{TemplateValue.TypeName(left)}' and '{TemplateValue.TypeName(right)}'");
        }
    }

    private static long FloorDivide(long a, long b)
    {
        if (b == 0)
        {
            throw new TemplateRuntimeException("integer division or modulo by zero");
        }

        long quotient = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? quotient - 1 : quotient;
    }

    // Python's modulo takes the sign of the divisor, which is what makes `loop.index0 % 2` safe to use.
    private static long Modulo(long a, long b)
    {
        if (b == 0)
        {
            throw new TemplateRuntimeException("integer division or modulo by zero");
        }

        long remainder = a % b;
        return remainder != 0 && ((remainder < 0) != (b < 0)) ? remainder + b : remainder;
    }

    private static double Modulo(double a, double b) => a - (b * Math.Floor(CheckedDivisor(a, b)));

    private static double CheckedDivisor(double a, double b) =>
        b == 0 ? throw new TemplateRuntimeException("division by zero") : a / b;

    private static string Repeat(string text, long count)
    {
        if (count <= 0)
        {
            return "";
        }

        if (text.Length * count > MaxRepeatedLength)
        {
            throw new TemplateRuntimeException("string repetition result is too large");
        }

        return new StringBuilder(text.Length * (int)count).Insert(0, text, (int)count).ToString();
    }

    private static List<object?> RepeatList(List<object?> list, long count)
    {
        if (count <= 0)
        {
            return [];
        }

        if (list.Count * count > MaxRepeatedLength)
        {
            throw new TemplateRuntimeException("list repetition result is too large");
        }

        return Enumerable.Repeat(list, (int)count).SelectMany(items => items).ToList();
    }

    private static void ThrowIfUndefined(object? value)
    {
        if (value is UndefinedValue undefined)
        {
            throw undefined.ToError();
        }
    }

    private static string Symbol(BinaryOperator op) => op switch
    {
        BinaryOperator.Add => "+",
        BinaryOperator.Subtract => "-",
        BinaryOperator.Multiply => "*",
        BinaryOperator.Divide => "/",
        BinaryOperator.FloorDivide => "//",
        BinaryOperator.Modulo => "%",
        _ => "**",
    };
}
