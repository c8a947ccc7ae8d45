using System.Text;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// One request's progress through its <see cref="GrammarConstraint"/>: which tokens it may sample next, and the
/// matcher advanced by each token it did sample. Lives on the engine thread with the request; no tensors.
/// </summary>
public sealed class ConstrainedOutput
{
    private readonly GrammarConstraint _constraint;
    private readonly TokenTrie _trie;
    private readonly ITokenizer _tokenizer;
    private readonly byte[]? _trigger;
    private readonly ulong[] _mask;
    // Before the trigger: the output's last bytes, enough to find a trigger that spans tokens.
    private readonly List<byte> _tail = [];
    private GrammarMatcher? _matcher;
    private ulong[]? _wholeTriggerRefusals;

    public ConstrainedOutput(GrammarConstraint constraint, TokenTrie trie, ITokenizer tokenizer)
    {
        _constraint = constraint;
        _trie = trie;
        _tokenizer = tokenizer;
        _mask = new ulong[trie.MaskWords];
        if (constraint.Trigger is null)
        {
            _matcher = new GrammarMatcher(constraint.Grammar);
        }
        else
        {
            _trigger = Encoding.UTF8.GetBytes(constraint.Trigger);
        }
    }

    /// <summary>Whether the grammar holds the output now (always without a trigger; after it with one).</summary>
    public bool IsActive => _matcher is not null;

    /// <summary>How many tokens the last mask allowed (for the metrics and the tests).</summary>
    public int LastAllowedCount { get; private set; }

    /// <summary>The tokens allowed next, as a bitmask over the vocabulary; empty while the output is still free.</summary>
    /// <param name="tokensLeft">
    /// How many tokens the request may still generate, this one included. The document is kept completable within
    /// them, its end of sequence included, so that max_tokens closes the document instead of cutting it: every
    /// tokenizer served has a token for each single byte, so the shortest completion can always be spelled.
    /// </param>
    public ReadOnlySpan<ulong> AllowedTokens(int tokensLeft = int.MaxValue)
    {
        if (_matcher is null)
        {
            return BeforeTrigger();
        }

        // After this token, tokensLeft - 1 remain: one for end of sequence, and at least one byte per other.
        // With one token left that is end of sequence alone (-1 admits no text), where the document can end.
        int maxBytesToEnd = tokensLeft == int.MaxValue ? int.MaxValue : tokensLeft - 2;
        if (_matcher.MinBytesToEnd > maxBytesToEnd + 1)
        {
            maxBytesToEnd = int.MaxValue; // too late to close in time: the reply ends at max_tokens, as it would unconstrained
        }

        LastAllowedCount = _trie.AllowedTokens(_matcher, _mask, maxBytesToEnd);
        if (LastAllowedCount == 0 && maxBytesToEnd != int.MaxValue)
        {
            LastAllowedCount = _trie.AllowedTokens(_matcher, _mask);
        }

        return _mask;
    }

    /// <summary>
    /// Before the trigger the output is free, except for the tokens that would complete the trigger and carry on
    /// with text its grammar refuses (for "&lt;tool_call&gt;" spelt in pieces, a last piece "&gt;{" where a newline
    /// is due): those would leave a call begun that can never be valid. Empty when nothing is refused.
    /// </summary>
    private ReadOnlySpan<ulong> BeforeTrigger()
    {
        ReadOnlySpan<byte> trigger = _trigger;
        // Tokens that hold the whole trigger from their first byte are refused or not whatever came before them:
        // judged once per request. Most steps then cost a glance at the output's tail.
        _wholeTriggerRefusals ??= WholeTriggerRefusals();
        bool masked = _wholeTriggerRefusals.Length > 0;
        if (masked)
        {
            _wholeTriggerRefusals.CopyTo(_mask, 0);
        }

        // k bytes of the trigger already written (the output's tail), the token supplying the rest and more.
        for (int k = Math.Min(_tail.Count, trigger.Length - 1); k > 0; k--)
        {
            if (!TailEndsWith(trigger[..k]))
            {
                continue;
            }

            var primed = new GrammarMatcher(_constraint.Grammar);
            if (!primed.TryAdvance(trigger[..k]))
            {
                continue;
            }

            if (!masked)
            {
                _mask.AsSpan().Fill(ulong.MaxValue);
                masked = true;
            }

            _trie.ClearRefused(trigger[k..], primed, _mask);
        }

        return masked ? _mask : default;
    }

    /// <summary>The mask that refuses the tokens starting with the whole trigger and going on wrongly; empty if none do.</summary>
    private ulong[] WholeTriggerRefusals()
    {
        var mask = new ulong[_mask.Length];
        Array.Fill(mask, ulong.MaxValue);
        return _trie.ClearRefused(_trigger, new GrammarMatcher(_constraint.Grammar), mask) > 0 ? mask : [];
    }

    private bool TailEndsWith(ReadOnlySpan<byte> bytes)
    {
        if (_tail.Count < bytes.Length)
        {
            return false;
        }

        for (int i = 0; i < bytes.Length; i++)
        {
            if (_tail[_tail.Count - bytes.Length + i] != bytes[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Advances past a sampled token.</summary>
    /// <exception cref="InvalidOperationException">The token breaks the grammar (it was sampled outside the mask).</exception>
    public void Accept(int tokenId)
    {
        if (_tokenizer.EndOfSequenceIds.Contains(tokenId) || _tokenizer.IsSpecialId(tokenId))
        {
            return; // no text: end of sequence is allowed by the mask only where the document can end
        }

        ReadOnlySpan<byte> bytes = _tokenizer.TokenBytes(tokenId);
        if (_matcher is not null)
        {
            if (!_matcher.TryAdvance(bytes))
            {
                throw new InvalidOperationException($"token {tokenId} does not continue the required output");
            }

            return;
        }

        _tail.AddRange(bytes);
        int at = _tail.ToArray().AsSpan().IndexOf(_trigger);
        if (at < 0)
        {
            // Keep only what could still be the start of the trigger.
            int keep = Math.Min(_tail.Count, _trigger!.Length - 1);
            _tail.RemoveRange(0, _tail.Count - keep);
            return;
        }

        // The trigger appeared: from its first byte, the output follows the grammar. The rest of the token that
        // completed it was sampled freely; if the grammar refuses it, the output stays free (the caller's parser
        // then sees a call that does not parse).
        var matcher = new GrammarMatcher(_constraint.Grammar);
        if (matcher.TryAdvance(_tail.ToArray().AsSpan(at)))
        {
            _matcher = matcher;
        }

        _tail.Clear();
    }
}
