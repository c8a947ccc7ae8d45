namespace LlmServer.Inference.Tokenization;

/// <summary>Finds the tokenizer a model directory carries, the same way for serving, fine-tuning and the tools.</summary>
public static class ModelTokenizer
{
    /// <summary>A directory with a tokenizer.json or GPT-2's vocab.json + merges.txt.</summary>
    public static bool Exists(string directory) =>
        HuggingFaceTokenizer.Exists(directory) || File.Exists(Path.Combine(directory, "vocab.json"));

    /// <summary>
    /// tokenizer.json when the directory has one, as transformers' fast tokenizers prefer it over
    /// GPT-2's vocab.json + merges.txt, which are read otherwise.
    /// </summary>
    public static ITokenizer Load(string directory) =>
        HuggingFaceTokenizer.Exists(directory) ? HuggingFaceTokenizer.Load(directory) : Gpt2Tokenizer.Load(directory);
}
