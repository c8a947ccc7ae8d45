using LlmServer.Inference.Models;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Engine;

/// <summary>What the API layer needs to know about the model the engine serves; no tensors.</summary>
public sealed record ServedModel(
    string Name,
    string Directory,
    Gpt2Config Config,
    Gpt2Tokenizer Tokenizer,
    ChatPromptFormatter ChatFormatter,
    int MaxModelLen,
    DateTimeOffset LoadedAt);
