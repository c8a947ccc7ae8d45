using System.Globalization;

namespace LlmServer.FineTuning;

/// <summary>
/// The names clients select fine-tuned weights by, in OpenAI's shape:
/// <c>ft:{base}:{organization}:{suffix}:{job id}</c> (the suffix empty when none was given), and
/// <c>{fine-tuned model}:ckpt-step-{N}</c> for a checkpoint. The job id keeps every name unique.
/// </summary>
public static class FineTunedModelName
{
    public static string For(string baseModel, string organization, string? suffix, string jobId) =>
        $"ft:{baseModel}:{organization}:{suffix}:{jobId}";

    public static string ForCheckpoint(string fineTunedModel, int stepNumber) =>
        string.Create(CultureInfo.InvariantCulture, $"{fineTunedModel}:ckpt-step-{stepNumber}");
}
