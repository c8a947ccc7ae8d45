using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Engine;

/// <summary>
/// Turns one request's sampled tokens into text and decides when it stops: end-of-text, stop
/// tokens, max_tokens, and stop strings, also those that span tokens. Text that might still turn
/// out to be the start of a stop string is held back, so a stop string never reaches the client.
/// </summary>
public sealed class RequestOutput
{
    private readonly Request _request;
    private readonly IncrementalDetokenizer _detokenizer;
    private readonly IReadOnlyList<int> _endOfSequenceIds;
    private readonly int _longestStop;
    private readonly IReadOnlyCollection<int> _suppressed;
    // Our own copy of the text: stop strings are searched in its tail only, so a long
    // completion costs O(new text) per token.
    private readonly System.Text.StringBuilder _text = new();
    private int _emittedLength;
    private readonly List<GeneratedToken> _pendingTokens = [];
    // The first prompt token has nothing before it to be predicted from.
    private readonly List<PromptTokenLogprob?>? _promptLogprobs;
    private bool _promptLogprobsSent;

    public RequestOutput(Request request, ITokenizer tokenizer, long randomSeed)
    {
        _request = request;
        _detokenizer = new IncrementalDetokenizer(tokenizer);
        _endOfSequenceIds = tokenizer.EndOfSequenceIds;
        _longestStop = request.Sampling.StopStrings.Count == 0 ? 0 : request.Sampling.StopStrings.Max(s => s.Length);
        Random = new SeededRandom(request.Sampling.Seed ?? randomSeed);
        Constraint = request.Sampling.Constraint is { } constraint
            ? new ConstrainedOutput(constraint, TokenTrie.For(tokenizer), tokenizer)
            : null;
        _suppressed = request.Sampling.MinTokens > 0
            ? request.Sampling.StopTokenIds.Concat(_endOfSequenceIds).Distinct().ToArray()
            : [];
        _promptLogprobs = request.Sampling.PromptLogprobs is null ? null : [null];
    }

    /// <summary>The prompt token whose logprob comes next, when prompt logprobs were asked for.</summary>
    public int NextPromptLogprob => _promptLogprobs?.Count ?? int.MaxValue;

    public void AddPromptLogprob(PromptTokenLogprob logprob) => _promptLogprobs!.Add(logprob);

    public SeededRandom Random { get; }

    /// <summary>Where the request stands in the output it is constrained to, if any.</summary>
    public ConstrainedOutput? Constraint { get; }

    /// <summary>Tokens that may not be sampled yet (end-of-text and stop tokens before min_tokens).</summary>
    public IReadOnlyCollection<int> SuppressedTokens =>
        _request.NumOutputTokens < _request.Sampling.MinTokens ? _suppressed : [];


    /// <summary>Where the next token's text starts in the completion (for text_offset).</summary>
    public int TextOffset => _text.Length;

    /// <summary>Records a sampled token and returns what the client should see of it.</summary>
    public GenerationEvent Append(GeneratedToken token)
    {
        Constraint?.Accept(token.TokenId);
        _request.AppendOutputToken(token.TokenId);
        _pendingTokens.Add(token);
        SamplingParameters sampling = _request.Sampling;
        bool isEndOfText = _endOfSequenceIds.Contains(token.TokenId) && !sampling.IgnoreEos;
        bool isStopToken = sampling.StopTokenIds.Contains(token.TokenId);
        bool minimumReached = _request.NumOutputTokens >= sampling.MinTokens;

        if ((isEndOfText || isStopToken) && minimumReached)
        {
            // The stop token's own text is not part of the completion; what was held back is.
            return Emit(_text.Length, FinishReason.Stop, null, flush: true) with { StopTokenId = isStopToken && !isEndOfText ? token.TokenId : null };
        }

        int searchFrom = Math.Max(0, _text.Length - (_longestStop - 1));
        _text.Append(_detokenizer.Push(token.TokenId));
        if (_longestStop > 0 && FindStopString(searchFrom) is (int at, string stop))
        {
            return Emit(at, FinishReason.Stop, stop, flush: false);
        }
        if (_request.NumOutputTokens >= sampling.MaxTokens)
        {
            return Emit(int.MaxValue, FinishReason.Length, null, flush: true);
        }
        return Emit(_text.Length - HeldBackLength(), finish: null, stopReason: null, flush: false);
    }

    /// <summary>A last event for a request that ends without a token of its own (abort, error).</summary>
    public GenerationEvent Finish(FinishReason reason, string? errorMessage = null) =>
        Emit(_emittedLength, reason, null, flush: false) with { ErrorMessage = errorMessage };

    private GenerationEvent Emit(int textEnd, FinishReason? finish, string? stopReason, bool flush)
    {
        if (flush)
        {
            _text.Append(_detokenizer.Flush());
        }
        textEnd = Math.Min(textEnd, _text.Length);
        string delta = textEnd > _emittedLength ? _text.ToString(_emittedLength, textEnd - _emittedLength) : "";
        _emittedLength = Math.Max(_emittedLength, textEnd);
        var tokens = _pendingTokens.ToArray();
        _pendingTokens.Clear();
        IReadOnlyList<PromptTokenLogprob?>? promptLogprobs = null;
        if (!_promptLogprobsSent && _promptLogprobs is not null && _promptLogprobs.Count == _request.PromptLength)
        {
            promptLogprobs = _promptLogprobs;
            _promptLogprobsSent = true;
        }
        return new GenerationEvent
        {
            RequestId = _request.RequestId,
            TextDelta = delta,
            Tokens = tokens,
            FinishReason = finish,
            StopReason = stopReason,
            PromptTokenCount = _request.PromptLength,
            OutputTokenCount = _request.NumOutputTokens,
            CachedPromptTokenCount = _request.NumCachedTokens,
            PromptLogprobs = promptLogprobs,
        };
    }

    private (int At, string Stop)? FindStopString(int searchFrom)
    {
        string tail = _text.ToString(searchFrom, _text.Length - searchFrom);
        (int At, string Stop)? earliest = null;
        foreach (string stop in _request.Sampling.StopStrings)
        {
            int at = tail.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (earliest is null || searchFrom + at < earliest.Value.At))
            {
                earliest = (searchFrom + at, stop);
            }
        }
        return earliest;
    }

    /// <summary>Length of the longest tail of the text that could still grow into a stop string.</summary>
    private int HeldBackLength()
    {
        if (_longestStop == 0)
        {
            return 0;
        }
        int window = Math.Min(_longestStop - 1, _text.Length - _emittedLength);
        string text = _text.ToString(_text.Length - window, window);
        int longest = 0;
        foreach (string stop in _request.Sampling.StopStrings)
        {
            for (int length = Math.Min(stop.Length - 1, window); length > longest; length--)
            {
                if (string.CompareOrdinal(text, text.Length - length, stop, 0, length) == 0)
                {
                    longest = length;
                    break;
                }
            }
        }
        return longest;
    }
}
