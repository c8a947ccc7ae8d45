namespace LlmServer.OpenAi;

/// <summary>Declares, for the OpenAPI document, the OpenAI error bodies a group of routes can answer with.</summary>
public static class OpenAiErrorResponses
{
    public static TBuilder ProducesOpenAiErrors<TBuilder>(this TBuilder builder, params int[] statusCodes) where TBuilder : IEndpointConventionBuilder
    {
        foreach (int status in statusCodes)
        {
            builder.WithMetadata(new ProducesResponseTypeMetadata(status, typeof(ErrorResponse), ["application/json"]));
        }
        return builder;
    }
}
