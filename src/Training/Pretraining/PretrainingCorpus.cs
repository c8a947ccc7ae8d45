using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Data;

namespace LlmServer.Training.Pretraining;

/// <summary>One document of a corpus: its text (what a tokenizer is trained on), and for a chat line its messages.</summary>
public sealed record PretrainingDocument(string Text, IReadOnlyList<ChatMessage>? Chat = null);

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
    public static IEnumerable<PretrainingDocument> ReadDocuments(string path, ChatPromptFormatter formatter)
    {
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            yield return new PretrainingDocument(File.ReadAllText(path));
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

    public static PretrainingCorpus Tokenize(IEnumerable<string> texts, Gpt2Tokenizer tokenizer) =>
        Tokenize(texts.Select(text => new PretrainingDocument(text)), tokenizer, formatter: null);

    /// <summary>
    /// Text documents are tokenized whole. A chat document is tokenized as serving and fine-tuning
    /// see it: the prompt before each assistant turn apart from the turn (TrainingExampleEncoder),
    /// because whole-text tokenization can cut the boundary differently (a template whose prompt
    /// ends in "Assistant: " gives a lone space token there, not a space inside the reply's first word).
    /// </summary>
    /// <param name="formatter">The chat template the chat documents were rendered with; needed only when there are any.</param>
    /// <exception cref="InvalidDataException">A chat document cannot be cut into prompt and turns with this template.</exception>
    public static PretrainingCorpus Tokenize(IEnumerable<PretrainingDocument> documents, Gpt2Tokenizer tokenizer, ChatPromptFormatter? formatter)
    {
        TrainingExampleEncoder? encoder = formatter is null ? null : new TrainingExampleEncoder(tokenizer, formatter);
        var tokens = new List<int>();
        int count = 0;
        foreach (PretrainingDocument document in documents)
        {
            if (document.Chat is { } chat)
            {
                if (encoder is null)
                {
                    throw new ArgumentException("chat documents need the chat template they were rendered with", nameof(formatter));
                }
                try
                {
                    tokens.AddRange(encoder.EncodeChat(chat, chat.Select(_ => true).ToArray()).TokenIds);
                }
                catch (FormatException e)
                {
                    throw new InvalidDataException($"chat document {count + 1}: {e.Message}", e);
                }
            }
            else
            {
                tokens.AddRange(tokenizer.Encode(document.Text));
            }
            tokens.Add(tokenizer.EndOfTextId);
            count++;
        }
        return new PretrainingCorpus(tokens.ToArray(), count);
    }

    /// <summary>
    /// Splits documents into training and held-out ones: every <paramref name="heldOutEvery"/>-th
    /// document (from a seeded offset) is held out, so both sides span the whole file.
    /// </summary>
    public static (List<T> Training, List<T> HeldOut) Split<T>(IReadOnlyList<T> documents, int heldOutEvery, long seed)
    {
        var training = new List<T>();
        var heldOut = new List<T>();
        int offset = new Random((int)(seed & int.MaxValue)).Next(heldOutEvery);
        for (int i = 0; i < documents.Count; i++)
        {
            (i % heldOutEvery == offset ? heldOut : training).Add(documents[i]);
        }
        return (training, heldOut);
    }

    private static PretrainingDocument ReadDocument(string line, ChatPromptFormatter formatter, string where)
    {
        try
        {
            using JsonDocument json = JsonDocument.Parse(line);
            JsonElement root = json.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("text", out JsonElement text) && text.ValueKind == JsonValueKind.String)
            {
                return new PretrainingDocument(text.GetString()!);
            }
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("messages", out JsonElement messages) && messages.ValueKind == JsonValueKind.Array)
            {
                var chat = messages.EnumerateArray()
                    .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))
                    .ToList();
                return new PretrainingDocument(formatter.Format(chat, addGenerationPrompt: false), chat);
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or ChatTemplateException)
        {
            throw new InvalidDataException($"{where}: {e.Message}", e);
        }
        throw new InvalidDataException($"{where}: neither {{\"text\": \"...\"}} nor a chat example {{\"messages\": [...]}}");
    }
}
