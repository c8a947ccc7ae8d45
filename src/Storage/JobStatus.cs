namespace LlmServer.Storage;

/// <summary>A fine-tuning job's place in its life, as OpenAI names it on the wire.</summary>
public enum JobStatus
{
    ValidatingFiles,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

public static class JobStatusNames
{
    /// <summary>OpenAI's name, which is also what the database stores.</summary>
    public static string ToWire(this JobStatus status) => status switch
    {
        JobStatus.ValidatingFiles => "validating_files",
        JobStatus.Queued => "queued",
        JobStatus.Running => "running",
        JobStatus.Succeeded => "succeeded",
        JobStatus.Failed => "failed",
        JobStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static JobStatus Parse(string wire) => wire switch
    {
        "validating_files" => JobStatus.ValidatingFiles,
        "queued" => JobStatus.Queued,
        "running" => JobStatus.Running,
        "succeeded" => JobStatus.Succeeded,
        "failed" => JobStatus.Failed,
        "cancelled" => JobStatus.Cancelled,
        _ => throw new FormatException($"Unknown job status '{wire}'."),
    };

    /// <summary>Succeeded, failed and cancelled jobs never change again.</summary>
    public static bool IsFinished(this JobStatus status) => status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled;
}
