using System.Text;
using LlmServer.Inference.Engine;
using LlmServer.OpenAi.Chat.ToolCalling;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// A response streamed as OpenAI's Responses events, in their order: response.created and in_progress; for the reply's
/// text an output message (output_item.added, content_part.added, output_text.delta ..., output_text.done,
/// content_part.done, output_item.done); for each call a function_call item (added, function_call_arguments.delta ...,
/// .done, output_item.done); then response.completed, or response.incomplete when max_output_tokens cut it. Every event
/// carries its sequence_number. The items are cut from the same parser's pieces as the non-streamed response's.
/// </summary>
public sealed class ResponseEventStream(HttpResponse http, ResponseObject inProgress, ToolCallReader? reader)
{
    private readonly ServerSentEvents _events = new(http);
    private readonly List<ResponseItem> _output = [];
    private int _sequence;
    private (string Id, StringBuilder Text)? _message;
    private (string Id, string CallId, string Name, StringBuilder Arguments)? _call;

    /// <summary>The finished response, or null when generation failed (the stream then ends with an error event).</summary>
    public async Task<ResponseObject?> RunAsync(IAsyncEnumerable<ChoiceEvent> generated, CancellationToken cancellationToken)
    {
        await WriteAsync(new ResponseEvent("response.created", inProgress), cancellationToken);
        await WriteAsync(new ResponseEvent("response.in_progress", inProgress), cancellationToken);
        var accumulator = new ChoiceAccumulator();
        await foreach (ChoiceEvent item in generated.WithCancellation(cancellationToken))
        {
            if (ChoiceAccumulator.IsFailure(item.Event))
            {
                ErrorDetail error = ChoiceAccumulator.Failure(item.Event).ToResponse().Error;
                await WriteAsync(new ErrorEvent(error.Code, error.Message, error.Param), cancellationToken);
                return null;
            }
            accumulator.Add(item.Event);
            var pieces = new List<ParsedPiece>();
            if (reader is null)
            {
                pieces.Add(new ParsedPiece(ParsedKind.Content, 0, item.Event.TextDelta));
            }
            else
            {
                pieces.AddRange(reader.Feed(item.Event.TextDelta));
                if (item.Event.IsFinal)
                {
                    pieces.AddRange(reader.Finish());
                }
            }
            foreach (ParsedPiece piece in pieces)
            {
                await WritePieceAsync(piece, cancellationToken);
            }
        }
        bool cut = accumulator.FinishReason == FinishReason.Length;
        string status = cut ? "incomplete" : "completed";
        // A reply with no text and no call is still one (empty) message, as the non-streamed response has it.
        if (_output.Count == 0 && _message is null && _call is null)
        {
            await OpenMessageAsync(cancellationToken);
        }
        await CloseAsync(status, cancellationToken);
        ResponseObject done = ResponseService.Completed(inProgress with { Status = status, Output = _output }, accumulator);
        await WriteAsync(new ResponseEvent(cut ? "response.incomplete" : "response.completed", done), cancellationToken);
        return done;
    }

    private async Task WritePieceAsync(ParsedPiece piece, CancellationToken cancellationToken)
    {
        switch (piece.Kind)
        {
            case ParsedKind.Content when piece.Text.Length > 0:
                if (_message is null)
                {
                    await CloseAsync("completed", cancellationToken);
                    await OpenMessageAsync(cancellationToken);
                }
                _message!.Value.Text.Append(piece.Text);
                await WriteAsync(new TextDeltaEvent(_message.Value.Id, _output.Count, 0, piece.Text), cancellationToken);
                break;
            case ParsedKind.CallStart:
                await CloseAsync("completed", cancellationToken);
                _call = (ResponseInput.NewId("fc"), reader!.CallId(piece.Index), piece.Text, new StringBuilder());
                await WriteAsync(new OutputItemEvent("response.output_item.added", _output.Count,
                    new FunctionCallItem(_call.Value.Id, _call.Value.CallId, _call.Value.Name, "", "in_progress")), cancellationToken);
                break;
            case ParsedKind.Arguments when _call is { } call:
                call.Arguments.Append(piece.Text);
                await WriteAsync(new ArgumentsDeltaEvent(call.Id, _output.Count, piece.Text), cancellationToken);
                break;
        }
    }

    private async Task OpenMessageAsync(CancellationToken cancellationToken)
    {
        _message = (ResponseInput.NewId("msg"), new StringBuilder());
        await WriteAsync(new OutputItemEvent("response.output_item.added", _output.Count,
            new MessageItem(_message.Value.Id, "assistant", "in_progress", [])), cancellationToken);
        await WriteAsync(new ContentPartEvent("response.content_part.added", _message.Value.Id, _output.Count, 0, new OutputText("")), cancellationToken);
    }

    /// <summary>Ends the open message or call: its done events, and the item joins the output.</summary>
    private async Task CloseAsync(string status, CancellationToken cancellationToken)
    {
        if (_message is { } message)
        {
            string text = message.Text.ToString();
            var item = new MessageItem(message.Id, "assistant", status, [new OutputText(text)]);
            await WriteAsync(new TextDoneEvent(message.Id, _output.Count, 0, text), cancellationToken);
            await WriteAsync(new ContentPartEvent("response.content_part.done", message.Id, _output.Count, 0, new OutputText(text)), cancellationToken);
            await WriteAsync(new OutputItemEvent("response.output_item.done", _output.Count, item), cancellationToken);
            _output.Add(item);
            _message = null;
        }
        if (_call is { } call)
        {
            string arguments = call.Arguments.ToString();
            var item = new FunctionCallItem(call.Id, call.CallId, call.Name, arguments, status);
            await WriteAsync(new ArgumentsDoneEvent(call.Id, _output.Count, call.Name, arguments), cancellationToken);
            await WriteAsync(new OutputItemEvent("response.output_item.done", _output.Count, item), cancellationToken);
            _output.Add(item);
            _call = null;
        }
    }

    private Task WriteAsync(StreamEvent streamEvent, CancellationToken cancellationToken) =>
        _events.WriteAsync<object>(streamEvent with { SequenceNumber = _sequence++ }, cancellationToken, streamEvent.Type);
}
