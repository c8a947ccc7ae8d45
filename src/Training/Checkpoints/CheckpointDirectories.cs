namespace LlmServer.Training.Checkpoints;

/// <summary>Where a run (pretraining or fine-tuning) keeps its checkpoints: {output}/checkpoints/step-N/.</summary>
public static class CheckpointDirectories
{
    public static string ForStep(string outputDirectory, int step) => Path.Combine(outputDirectory, "checkpoints", $"step-{step}");

    /// <summary>The checkpoint with the highest step that has a trainer_state.json, or null.</summary>
    public static string? Latest(string outputDirectory)
    {
        string checkpoints = Path.Combine(outputDirectory, "checkpoints");
        if (!Directory.Exists(checkpoints))
        {
            return null;
        }
        return Directory.GetDirectories(checkpoints, "step-*")
            .Select(d => (Directory: d, Step: int.TryParse(Path.GetFileName(d)["step-".Length..], out int step) ? step : -1))
            .Where(c => c.Step >= 0 && File.Exists(Path.Combine(c.Directory, TrainerState.FileName)))
            .OrderByDescending(c => c.Step)
            .Select(c => c.Directory)
            .FirstOrDefault();
    }
}
