using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.FineTuning;

/// <summary>
/// A hyperparameter as OpenAI writes it: the string "auto" (the server chooses) or a number.
/// </summary>
[JsonConverter(typeof(HyperparameterValueConverter))]
public readonly record struct HyperparameterValue(double? Number)
{
    public static HyperparameterValue Auto => default;

    public bool IsAuto => Number is null;

    public override string ToString() => Number?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "auto";
}

public sealed class HyperparameterValueConverter : JsonConverter<HyperparameterValue>
{
    public override HyperparameterValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number => new HyperparameterValue(reader.GetDouble()),
        JsonTokenType.String when reader.ValueTextEquals("auto") => HyperparameterValue.Auto,
        _ => throw new JsonException("A hyperparameter is \"auto\" or a number."),
    };

    public override void Write(Utf8JsonWriter writer, HyperparameterValue value, JsonSerializerOptions options)
    {
        if (value.Number is double number)
        {
            writer.WriteNumberValue(number); // 3.0 goes out as 3, as an integer hyperparameter should
        }
        else
        {
            writer.WriteStringValue("auto");
        }
    }
}
