using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;

namespace LlmServer.OpenAi;

/// <summary>
/// Turns what System.Text.Json says about a request body into OpenAI's 400: the parameter in
/// OpenAI's notation (<c>messages[0].role</c>) and, for a value of the wrong type, the type the
/// contract expects there. The type is read from the serializer's own metadata along the path, not
/// from the exception text, which for a constructor-bound property (a message's role) names the
/// enclosing record and so said "expected an object" for <c>"role": 5</c>.
/// </summary>
public static partial class JsonRequestErrors
{
    public static ApiException From(JsonException e, Type bodyType, JsonSerializerOptions options)
    {
        IReadOnlyList<object> segments = Segments(e.Path);
        string? param = segments.Count > 0 ? Param(segments) : null;
        (Type? expected, string? unknownMember) = Resolve(bodyType, segments, options);

        if (e is MalformedTextException malformed
            // A dictionary key is read by the serializer's own string converter, which fails this way on the same bytes.
            || (e.InnerException is InvalidOperationException && expected is not null && options.GetTypeInfo(expected).Kind == JsonTypeInfoKind.Dictionary))
        {
            string where = (param ?? "") + (e as MalformedTextException)?.InnerPath;
            return new ApiException(StatusCodes.Status400BadRequest,
                $"Invalid value for '{where}': the string is not valid Unicode text. It holds a lone surrogate escape (such as \\ud800 " +
                "without its pair, which text cut inside an emoji leaves) or bytes that are not UTF-8.",
                param: where, code: "invalid_value");
        }
        if (unknownMember is not null)
        {
            return new ApiException(StatusCodes.Status400BadRequest, $"Unrecognized request argument supplied: {param}",
                param: param, code: "unknown_parameter");
        }
        if (ConversionFailure().IsMatch(e.Message))
        {
            return param is null || expected is null
                ? new ApiException(StatusCodes.Status400BadRequest, "The request body must be a JSON object.", code: "invalid_type")
                : new ApiException(StatusCodes.Status400BadRequest, $"Invalid type for '{param}': expected {Describe(expected, options)}.",
                    param: param, code: "invalid_type");
        }
        if (e.InnerException is null && param is not null)
        {
            // A contract's own converter refused the value and said why.
            return new ApiException(StatusCodes.Status400BadRequest, $"Invalid value for '{param}': {FirstLine(e.Message)}", param: param, code: "invalid_value");
        }
        return new ApiException(StatusCodes.Status400BadRequest,
            $"We could not parse the JSON body of your request: {FirstLine(e.Message)}", param: param, code: "invalid_json");
    }

    /// <summary>
    /// Follows the path through the contract types: the type expected at its end, or the name of a
    /// member that a contract refusing unknown members does not have.
    /// </summary>
    private static (Type? Expected, string? UnknownMember) Resolve(Type bodyType, IReadOnlyList<object> segments, JsonSerializerOptions options)
    {
        Type type = bodyType;
        foreach (object segment in segments)
        {
            JsonTypeInfo info = options.GetTypeInfo(Nullable.GetUnderlyingType(type) ?? type);
            switch (info.Kind, segment)
            {
                case (JsonTypeInfoKind.Object, string name):
                    JsonPropertyInfo? property = info.Properties.FirstOrDefault(p => p.Name == name);
                    if (property is null)
                    {
                        return (null, info.UnmappedMemberHandling == JsonUnmappedMemberHandling.Disallow ? name : null);
                    }
                    type = property.PropertyType;
                    break;
                case (JsonTypeInfoKind.Enumerable, int):
                case (JsonTypeInfoKind.Dictionary, string):
                    type = info.ElementType!;
                    break;
                default:
                    // Inside a free-form value (JsonElement): there is no contract type to name.
                    return (null, null);
            }
        }
        return (type, null);
    }

    private static string Describe(Type type, JsonSerializerOptions options)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
        {
            return "a string";
        }
        if (type == typeof(bool))
        {
            return "a boolean";
        }
        if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte))
        {
            return "an integer";
        }
        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal))
        {
            return "a number";
        }
        return options.GetTypeInfo(type).Kind == JsonTypeInfoKind.Enumerable ? "an array" : "an object";
    }

    /// <summary>"$.messages[0].role" as [ "messages", 0, "role" ]; names that need quoting come as $['a.b'].</summary>
    private static IReadOnlyList<object> Segments(string? path)
    {
        var segments = new List<object>();
        foreach (Match match in PathSegment().Matches(path ?? ""))
        {
            segments.Add(match.Groups["index"].Success
                ? int.Parse(match.Groups["index"].Value, System.Globalization.CultureInfo.InvariantCulture)
                : match.Groups["name"].Success ? match.Groups["name"].Value : match.Groups["quoted"].Value.Replace("''", "'"));
        }
        return segments;
    }

    private static string Param(IReadOnlyList<object> segments) =>
        string.Concat(segments.Select((s, i) => s is int index ? $"[{index}]" : i == 0 ? (string)s : $".{s}"));

    private static string FirstLine(string message)
    {
        int end = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (end > 0 ? message[..end] : message).Trim();
    }

    [GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>(?:[^']|'')*)'\]|\[(?<index>\d+)\]")]
    private static partial Regex PathSegment();

    [GeneratedRegex(@"could not be converted to ")]
    private static partial Regex ConversionFailure();
}
