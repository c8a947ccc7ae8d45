namespace LlmServer.OpenAi.Responses;

/// <summary>One of OpenAI's ResponseStreamEvent types: its type names it, and sequence_number orders it in the stream.</summary>
public abstract record StreamEvent(string Type)
{
    public int SequenceNumber { get; init; }
}

/// <summary>response.created, in_progress, completed, incomplete: the whole response as it stands.</summary>
public sealed record ResponseEvent(string Type, ResponseObject Response) : StreamEvent(Type);

/// <summary>response.output_item.added and .done.</summary>
public sealed record OutputItemEvent(string Type, int OutputIndex, ResponseItem Item) : StreamEvent(Type);

/// <summary>response.content_part.added and .done.</summary>
public sealed record ContentPartEvent(string Type, string ItemId, int OutputIndex, int ContentIndex, ContentPart Part) : StreamEvent(Type);

public sealed record TextDeltaEvent(string ItemId, int OutputIndex, int ContentIndex, string Delta) : StreamEvent("response.output_text.delta")
{
    public IReadOnlyList<object> Logprobs { get; init; } = [];
}

public sealed record TextDoneEvent(string ItemId, int OutputIndex, int ContentIndex, string Text) : StreamEvent("response.output_text.done")
{
    public IReadOnlyList<object> Logprobs { get; init; } = [];
}

public sealed record ArgumentsDeltaEvent(string ItemId, int OutputIndex, string Delta) : StreamEvent("response.function_call_arguments.delta");

public sealed record ArgumentsDoneEvent(string ItemId, int OutputIndex, string Name, string Arguments) : StreamEvent("response.function_call_arguments.done");

/// <summary>A failure after the stream began: the status line is sent, so the error travels as an event.</summary>
public sealed record ErrorEvent(string? Code, string Message, string? Param) : StreamEvent("error");
