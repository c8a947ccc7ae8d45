using System.Globalization;
using System.Text;
using LlmServer.Training.Checkpoints;

namespace LlmServer.Training.Reports;

/// <summary>
/// The loss curve of a run as a self-contained SVG: training loss per step (raw, faint, and
/// smoothed), held-out loss where it was measured, on a logarithmic loss axis, because a loss
/// falls by orders of magnitude early and the interesting part is the slow tail.
/// </summary>
public static class LossCurveChart
{
    public const string FileName = "loss-curve.svg";

    private const int Width = 800, Height = 450;
    private const int Left = 70, Right = 20, Top = 40, Bottom = 50;
    private const double SmoothingWeight = 0.9;

    public static string Svg(IReadOnlyList<TrainerState.LogEntry> history, string title)
    {
        var training = history.Where(e => e.Loss is > 0).Select(e => (X: (double)e.Step, Y: e.Loss!.Value)).ToList();
        var heldOut = history.Where(e => e.ValidationLoss is > 0).Select(e => (X: (double)e.Step, Y: e.ValidationLoss!.Value)).ToList();
        var all = training.Concat(heldOut).ToList();
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}</text>\n");
        if (all.Count == 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"{Height / 2}\" text-anchor=\"middle\">no steps recorded</text>\n</svg>\n");
            return svg.ToString();
        }

        double maxStep = Math.Max(1, all.Max(p => p.X));
        double logLow = Math.Floor(Math.Log10(all.Min(p => p.Y)) * 4) / 4;
        double logHigh = Math.Ceiling(Math.Log10(all.Max(p => p.Y)) * 4) / 4;
        if (logHigh - logLow < 0.25)
        {
            logHigh = logLow + 0.25;
        }
        double PlotX(double step) => Left + step / maxStep * (Width - Left - Right);
        double PlotY(double loss) => Top + (logHigh - Math.Log10(loss)) / (logHigh - logLow) * (Height - Top - Bottom);

        // Axes, with loss ticks at 1, 2 and 5 times each power of ten inside the range.
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Height - Bottom}\" x2=\"{Width - Right}\" y2=\"{Height - Bottom}\" stroke=\"#333\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Height - Bottom}\" stroke=\"#333\"/>\n");
        for (int power = (int)Math.Floor(logLow); power <= (int)Math.Ceiling(logHigh); power++)
        {
            foreach (double mantissa in new[] { 1.0, 2.0, 5.0 })
            {
                double value = mantissa * Math.Pow(10, power);
                double log = Math.Log10(value);
                if (log < logLow - 1e-9 || log > logHigh + 1e-9)
                {
                    continue;
                }
                double y = PlotY(value);
                svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{y:F1}\" x2=\"{Width - Right}\" y2=\"{y:F1}\" stroke=\"#eee\"/>");
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{value.ToString("G3", CultureInfo.InvariantCulture)}</text>\n");
            }
        }
        for (int tick = 0; tick <= 5; tick++)
        {
            double step = maxStep * tick / 5;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{PlotX(step):F1}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Math.Round(step):0}</text>\n");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 10}\" text-anchor=\"middle\">optimizer step</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(18 {(Top + Height - Bottom) / 2}) rotate(-90)\" text-anchor=\"middle\">loss (cross-entropy, log scale)</text>\n");

        if (training.Count > 0)
        {
            svg.Append(Polyline(training, PlotX, PlotY, "#9ecae1", 1)).Append('\n');
            svg.Append(Polyline(Smoothed(training), PlotX, PlotY, "#08519c", 2)).Append('\n');
        }
        if (heldOut.Count > 0)
        {
            svg.Append(Polyline(heldOut, PlotX, PlotY, "#d94801", 2)).Append('\n');
            foreach ((double x, double y) in heldOut)
            {
                svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{PlotX(x):F1}\" cy=\"{PlotY(y):F1}\" r=\"3\" fill=\"#d94801\"/>");
            }
            svg.Append('\n');
        }

        // Legend, with the last values so the picture alone tells where the run ended.
        int legendX = Width - Right - 250;
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{legendX}\" y=\"{Top}\" width=\"240\" height=\"{(heldOut.Count > 0 ? 48 : 28)}\" fill=\"white\" stroke=\"#ccc\"/>\n");
        if (training.Count > 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{legendX + 10}\" y1=\"{Top + 16}\" x2=\"{legendX + 34}\" y2=\"{Top + 16}\" stroke=\"#08519c\" stroke-width=\"2\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{legendX + 40}\" y=\"{Top + 20}\">training (smoothed), last {Smoothed(training)[^1].Y:F3}</text>\n");
        }
        if (heldOut.Count > 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{legendX + 10}\" y1=\"{Top + 36}\" x2=\"{legendX + 34}\" y2=\"{Top + 36}\" stroke=\"#d94801\" stroke-width=\"2\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{legendX + 40}\" y=\"{Top + 40}\">held-out, last {heldOut[^1].Y:F3}</text>\n");
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>An exponential moving average, debiased at the start as TensorBoard's smoothing is.</summary>
    private static List<(double X, double Y)> Smoothed(IReadOnlyList<(double X, double Y)> points)
    {
        var smoothed = new List<(double X, double Y)>(points.Count);
        double average = 0;
        for (int i = 0; i < points.Count; i++)
        {
            average = SmoothingWeight * average + (1 - SmoothingWeight) * points[i].Y;
            smoothed.Add((points[i].X, average / (1 - Math.Pow(SmoothingWeight, i + 1))));
        }
        return smoothed;
    }

    private static string Polyline(IEnumerable<(double X, double Y)> points, Func<double, double> plotX, Func<double, double> plotY, string colour, int width) =>
        $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" points=\"" +
        string.Join(" ", points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{plotX(p.X):F1},{plotY(p.Y):F1}"))) + "\"/>";

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
