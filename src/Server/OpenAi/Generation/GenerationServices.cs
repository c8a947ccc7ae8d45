namespace LlmServer.OpenAi.Generation;

public static class GenerationServices
{
    /// <summary>The one way from a route to the engine: models, completions, chat and the tokenizer routes resolve models through it.</summary>
    public static IServiceCollection AddGeneration(this IServiceCollection services) => services.AddSingleton<GenerationService>();
}
