namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>Metric conversions by powers of ten, both ways.</summary>
/// <remarks>Split by value and units, so a held-out conversion is one training never showed.</remarks>
public sealed class UnitConversionFamily : DemoTaskFamily
{
    private sealed record Unit(string Singular, string Plural);

    private static readonly Unit Millimeter = new("millimeter", "millimeters"), Centimeter = new("centimeter", "centimeters"),
        Meter = new("meter", "meters"), Kilometer = new("kilometer", "kilometers"), Gram = new("gram", "grams"),
        Kilogram = new("kilogram", "kilograms"), Milliliter = new("milliliter", "milliliters"), Liter = new("liter", "liters");

    /// <summary>Larger unit, smaller unit, how many of the smaller make one of the larger.</summary>
    private static readonly (Unit Large, Unit Small, int Factor)[] Scales =
    [
        (Meter, Centimeter, 100), (Meter, Millimeter, 1000), (Centimeter, Millimeter, 10), (Kilometer, Meter, 1000),
        (Kilogram, Gram, 1000), (Liter, Milliliter, 1000),
    ];

    private static readonly string[] Prompts =
        ["How many {2} are in {0} {1}?", "Convert {0} {1} to {2}.", "What is {0} {1} in {2}?", "How many {2} is {0} {1}?"];

    public override string Name => "unit_conversion";
    public override double Weight => 0.12;

    public override DemoExample Draw(Random random)
    {
        (Unit large, Unit small, int factor) = Pick(random, Scales);
        int count = 1 + random.Next(99);
        bool down = random.Next(2) == 0;
        (Unit from, int fromCount, Unit to, int toCount) = down
            ? (large, count, small, count * factor)
            : (small, count * factor, large, count);
        string fromName = Plural(fromCount, from.Singular, from.Plural);
        string toName = Plural(toCount, to.Singular, to.Plural);
        string prompt = string.Format(Pick(random, Prompts), fromCount, fromName, to.Plural);
        return Example($"{fromCount} {from.Plural} to {to.Plural}", prompt, $"{fromCount} {fromName} is {toCount} {toName}.");
    }
}
