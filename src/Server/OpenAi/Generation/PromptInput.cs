using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tokenization;

namespace LlmServer.OpenAi.Generation;

/// <summary>Reads the prompt forms OpenAI accepts and turns them into token ids.</summary>
public static class PromptInput
{
    public const int MaxPrompts = 64;

    /// <summary>
    /// How many prompts <paramref name="prompt"/> holds, read from its shape alone, so that the queue
    /// can refuse a request before any of it is encoded. A malformed prompt counts as one: parsing
    /// it refuses it after.
    /// </summary>
    public static int CountCompletionPrompts(JsonElement prompt)
    {
        int count = prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() > 0 && prompt[0].ValueKind != JsonValueKind.Number
            ? prompt.GetArrayLength()
            : 1;
        SamplingRequestParser.Require(count <= MaxPrompts, "prompt", $"prompt must hold between 1 and {MaxPrompts} prompts.");
        return count;
    }

    /// <summary>prompt: a string, a list of strings, a list of token ids, or a list of such lists.</summary>
    /// <remarks>A text prompt that cannot fit the context is refused as soon as that is known (<see cref="EncodePrompt"/>).</remarks>
    public static IReadOnlyList<IReadOnlyList<int>> ParseCompletionPrompt(JsonElement prompt, ServedModel model, CancellationToken cancellationToken)
    {
        ITokenizer tokenizer = model.Tokenizer;
        var prompts = new List<IReadOnlyList<int>>();
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                prompts.Add(EncodePrompt(model, LargeJsonString.GetString(prompt), "prompt", addSpecialTokens: true, cancellationToken));
                break;
            case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt[0].ValueKind == JsonValueKind.Number:
                prompts.Add(ReadTokenIds(prompt, tokenizer, "prompt"));
                break;
            case JsonValueKind.Array:
                foreach (JsonElement item in prompt.EnumerateArray())
                {
                    prompts.Add(item.ValueKind switch
                    {
                        JsonValueKind.String => EncodePrompt(model, LargeJsonString.GetString(item), "prompt", addSpecialTokens: true, cancellationToken),
                        JsonValueKind.Array => ReadTokenIds(item, tokenizer, "prompt"),
                        _ => throw ApiException.InvalidParameter("prompt", "prompt must be a string, a list of strings, a list of token ids, or a list of token-id lists."),
                    });
                }
                break;
            case JsonValueKind.Undefined or JsonValueKind.Null:
                throw ApiException.InvalidParameter("prompt", "prompt is required.");
            default:
                throw ApiException.InvalidParameter("prompt", "prompt must be a string, a list of strings, a list of token ids, or a list of token-id lists.");
        }
        SamplingRequestParser.Require(prompts.Count is >= 1 and <= MaxPrompts, "prompt", $"prompt must hold between 1 and {MaxPrompts} prompts.");
        return prompts;
    }

    /// <summary>
    /// The ids of a text prompt, or the context_length_exceeded refusal as cheaply as it can be
    /// known: before encoding when even the fewest tokens the text could make are too many (its
    /// UTF-8 length over the longest token's), else as soon as the encoding passes the context,
    /// so refusing a huge prompt costs one pass over it plus about a context's worth of encoding.
    /// Encoding stops when <paramref name="cancellationToken"/> (the client's connection) is cancelled.
    /// <paramref name="addSpecialTokens"/> as vLLM: true for a completion prompt (Llama 3 gets its BOS), false for a
    /// rendered chat template, which writes its own.
    /// </summary>
    public static IReadOnlyList<int> EncodePrompt(ServedModel model, string text, string param, bool addSpecialTokens, CancellationToken cancellationToken)
    {
        long atLeast = model.Tokenizer.MinTokenCount(text);
        if (atLeast >= model.MaxModelLen)
        {
            throw SamplingRequestParser.PromptTooLong(model, atLeast, param, countIsLowerBound: true);
        }
        // One token short of the context is the longest prompt that leaves room to generate.
        IReadOnlyList<int> ids = model.Tokenizer.Encode(text, addSpecialTokens, model.MaxModelLen - 1, cancellationToken);
        if (ids.Count >= model.MaxModelLen)
        {
            throw SamplingRequestParser.PromptTooLong(model, ids.Count, param, countIsLowerBound: true);
        }
        return ids;
    }

    /// <summary>
    /// The ids the model reads: an empty prompt still needs a position to predict from, and GPT-2
    /// starts every document with end-of-text, so that is what an empty prompt becomes.
    /// </summary>
    public static IReadOnlyList<int> ForModel(IReadOnlyList<int> promptIds, ITokenizer tokenizer) =>
        promptIds.Count == 0 ? [tokenizer.EndOfTextId] : promptIds;

    public static IReadOnlyList<int> ReadTokenIds(JsonElement array, ITokenizer tokenizer, string param)
    {
        var ids = new List<int>(array.GetArrayLength());
        foreach (JsonElement item in array.EnumerateArray())
        {
            SamplingRequestParser.Require(item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int id) && tokenizer.IsValidId(id),
                param, $"{param} contains {item}, which is not a token id of this model (0..{tokenizer.VocabSize - 1}).");
            ids.Add(item.GetInt32());
        }
        return ids;
    }
}
