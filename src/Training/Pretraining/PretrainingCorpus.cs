using System.Text.Json;
using LlmServer.Inference.Tokenization;
using LlmServer.Inference.Tokenization.ChatTemplates;

namespace LlmServer.Training.Pretraining;

/// <summary>
/// A corpus as one stream of token ids, each document followed by end-of-text, as GPT-2 was
/// trained: windows are cut from the stream wherever they fall, across document boundaries.
/// </summary>
public sealed class PretrainingCorpus
{
    private PretrainingCorpus(int[] tokens, int documentCount)
    {
        Tokens = tokens;
        DocumentCount = documentCount;
    }

    public int[] Tokens { get; }
    public int DocumentCount { get; }

    /// <summary>
    /// The documents of a file: a .jsonl file holds one per line, either <c>{"text": ...}</c> or a
    /// chat example <c>{"messages": [...]}</c> (rendered with the model's chat template, so that
    /// pretraining already sees serving's layout); any other file is text, one document, in which
    /// "&lt;|endoftext|&gt;" may separate documents.
    /// </summary>
    /// <exception cref="InvalidDataException">A line is not such a document; the message names the file and line.</exception>
    public static IEnumerable<string> ReadDocuments(string path, ChatPromptFormatter formatter)
    {
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            yield return File.ReadAllText(path);
            yield break;
        }
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (!string.IsNullOrWhiteSpace(line))
            {
                yield return ReadDocument(line, formatter, $"{path}: line {lineNumber}");
            }
        }
    }

    public static PretrainingCorpus Tokenize(IEnumerable<string> documents, Gpt2Tokenizer tokenizer)
    {
        var tokens = new List<int>();
        int count = 0;
        foreach (string document in documents)
        {
            tokens.AddRange(tokenizer.Encode(document));
            tokens.Add(tokenizer.EndOfTextId);
            count++;
        }
        return new PretrainingCorpus(tokens.ToArray(), count);
    }

    /// <summary>
    /// Splits documents into training and held-out ones: every <paramref name="heldOutEvery"/>-th
    /// document (from a seeded offset) is held out, so both sides span the whole file.
    /// </summary>
    public static (List<string> Training, List<string> HeldOut) Split(IReadOnlyList<string> documents, int heldOutEvery, long seed)
    {
        var training = new List<string>();
        var heldOut = new List<string>();
        int offset = new Random((int)(seed & int.MaxValue)).Next(heldOutEvery);
        for (int i = 0; i < documents.Count; i++)
        {
            (i % heldOutEvery == offset ? heldOut : training).Add(documents[i]);
        }
        return (training, heldOut);
    }

    private static string ReadDocument(string line, ChatPromptFormatter formatter, string where)
    {
        try
        {
            using JsonDocument json = JsonDocument.Parse(line);
            JsonElement root = json.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("text", out JsonElement text) && text.ValueKind == JsonValueKind.String)
            {
                return text.GetString()!;
            }
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("messages", out JsonElement messages) && messages.ValueKind == JsonValueKind.Array)
            {
                var chat = messages.EnumerateArray()
                    .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))
                    .ToList();
                return formatter.Format(chat, addGenerationPrompt: false);
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or ChatTemplateException)
        {
            throw new InvalidDataException($"{where}: {e.Message}", e);
        }
        throw new InvalidDataException($"{where}: neither {{\"text\": \"...\"}} nor a chat example {{\"messages\": [...]}}");
    }
}
