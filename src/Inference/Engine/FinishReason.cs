namespace LlmServer.Inference.Engine;

public enum FinishReason
{
    /// <summary>End-of-text, a stop token or a stop string.</summary>
    Stop,
    /// <summary>max_tokens reached.</summary>
    Length,
    /// <summary>The client went away or asked to stop.</summary>
    Aborted,
    /// <summary>The engine failed while running this request.</summary>
    Error,
}
