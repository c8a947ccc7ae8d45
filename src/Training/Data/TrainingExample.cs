namespace LlmServer.Training.Data;

/// <summary>
/// One tokenized example: the tokens the model reads and, per token, whether the model is trained
/// to predict it (a loss term at the position before it).
/// </summary>
public sealed record TrainingExample
{
    public TrainingExample(int[] tokenIds, bool[] trained)
    {
        if (tokenIds.Length != trained.Length)
        {
            throw new ArgumentException($"{tokenIds.Length} tokens but {trained.Length} trained flags", nameof(trained));
        }
        TokenIds = tokenIds;
        Trained = trained;
        // The first token has nothing before it to predict it from, so it can never carry a loss.
        TrainedTokenCount = trained.Skip(1).Count(t => t);
    }

    public int[] TokenIds { get; }
    public bool[] Trained { get; }

    /// <summary>Tokens that carry a loss term: trained ones after the first position.</summary>
    public int TrainedTokenCount { get; }

    public int Length => TokenIds.Length;

    /// <summary>The first <paramref name="maxLength"/> tokens (an example the model's context cannot hold loses its end).</summary>
    public TrainingExample Truncate(int maxLength) =>
        Length <= maxLength ? this : new TrainingExample(TokenIds[..maxLength], Trained[..maxLength]);
}
