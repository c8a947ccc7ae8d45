using System.Globalization;
using System.Text;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Python's <c>strftime</c> for the <c>strftime_now</c> global that Hugging Face provides; Llama 3.x
/// templates use it to stamp "Today Date: 26 Jul 2024" into the system prompt. English names, as
/// under Python's default C locale.
/// </summary>
internal static class PythonStrftime
{
    public static string Format(DateTime time, string format)
    {
        var culture = CultureInfo.InvariantCulture;
        var builder = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i == format.Length - 1)
            {
                builder.Append(format[i]);
                continue;
            }

            char directive = format[++i];
            string? expansion = directive switch
            {
                'a' => time.ToString("ddd", culture),
                'A' => time.ToString("dddd", culture),
                'b' or 'h' => time.ToString("MMM", culture),
                'B' => time.ToString("MMMM", culture),
                'd' => time.ToString("dd", culture),
                'e' => time.Day.ToString(culture).PadLeft(2),
                'm' => time.ToString("MM", culture),
                'y' => time.ToString("yy", culture),
                'Y' => time.Year.ToString(culture),
                'H' => time.ToString("HH", culture),
                'I' => time.ToString("hh", culture),
                'M' => time.ToString("mm", culture),
                'S' => time.ToString("ss", culture),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => time.DayOfYear.ToString("000", culture),
                'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", culture),
                'w' => ((int)time.DayOfWeek).ToString(culture),
                'F' => time.ToString("yyyy-MM-dd", culture),
                'T' => time.ToString("HH:mm:ss", culture),
                '%' => "%",
                _ => null,
            };
            builder.Append(expansion ?? "%" + directive);
        }

        return builder.ToString();
    }
}
