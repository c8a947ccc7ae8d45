namespace LlmServer.Contracts;

public sealed record ModelList(IReadOnlyList<ModelCard> Data)
{
    public string Object => "list";
}

/// <summary>OpenAI's Model object, plus vLLM's max_model_len and root (where the weights came from).</summary>
public sealed record ModelCard(string Id, long Created, string OwnedBy, int MaxModelLen, string Root)
{
    public string Object => "model";
}
