using System.Xml.Linq;
using LlmServer.Training.Checkpoints;
using LlmServer.Training.Reports;

namespace LlmServer.Training.Tests.Pretraining;

public sealed class LossCurveChartTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void Every_step_and_every_evaluation_is_drawn_in_a_valid_svg()
    {
        var history = Enumerable.Range(1, 50).Select(step => new TrainerState.LogEntry { Step = step, Loss = 8.0 / step })
            .Concat(new[] { 10, 20, 30, 40, 50 }.Select(step => new TrainerState.LogEntry { Step = step, ValidationLoss = 9.0 / step }))
            .ToList();

        XDocument document = XDocument.Parse(LossCurveChart.Svg(history, "run <1>"));

        var lines = document.Descendants(Svg + "polyline").Select(p => p.Attribute("points")!.Value.Split(' ')).ToList();
        Assert.Equal(3, lines.Count);                         // raw training, smoothed training, held-out
        Assert.Equal(50, lines[0].Length);
        Assert.Equal(50, lines[1].Length);
        Assert.Equal(5, lines[2].Length);
        Assert.Equal(5, document.Descendants(Svg + "circle").Count());
        Assert.Contains(document.Descendants(Svg + "text"), t => t.Value == "run <1>");
        // Falling loss goes down the picture: the last point is lower (larger y) than the first.
        double FirstY(string[] points, int i) => double.Parse(points[i].Split(',')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(FirstY(lines[0], 49) > FirstY(lines[0], 0));
    }

    [Fact]
    public void An_empty_history_still_makes_a_picture_that_says_so()
    {
        XDocument document = XDocument.Parse(LossCurveChart.Svg([], "nothing"));
        Assert.Contains(document.Descendants(Svg + "text"), t => t.Value == "no steps recorded");
        Assert.Empty(document.Descendants(Svg + "polyline"));
    }
}
