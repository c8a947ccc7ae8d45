using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.FineTuning;
using LlmServer.OpenAi;
using LlmServer.OpenAi.Chat;
using LlmServer.OpenAi.Completions;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace LlmServer.ApiDocumentation;

/// <summary>
/// The OpenAPI document at /swagger/v1/swagger.json and its UI at /swagger: every route with its
/// wire schemas (snake_case, from the same JSON options the API writes with), the two Bearer keys,
/// and examples for the generation requests.
/// </summary>
public static class OpenApiDocumentation
{
    public const string InferenceScheme = "inference_key";
    public const string AdminScheme = "admin_key";

    public static IServiceCollection AddOpenApiDocumentation(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        // Swashbuckle's route template uses a regex constraint, which the slim builder leaves out.
        services.Configure<Microsoft.AspNetCore.Routing.RouteOptions>(routes =>
            routes.SetParameterPolicy<Microsoft.AspNetCore.Routing.Constraints.RegexInlineRouteConstraint>("regex"));
        // The document's property names must be the wire's: the API writes with OpenAiJson, not MVC's options.
        services.AddSingleton<ISerializerDataContractResolver>(new JsonSerializerDataContractResolver(OpenAiJson.Options));
        services.AddSwaggerGen(swagger =>
        {
            swagger.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "llmserver",
                Version = "v1",
                Description = "OpenAI-compatible inference (chat and completions, also streamed as Server-Sent Events), vLLM's tokenizer routes, "
                    + "OpenAI's Files and fine-tuning APIs and hot-swap administration. Errors are OpenAI's shape: {\"error\": {message, type, param, code}}.",
            });
            swagger.AddSecurityDefinition(InferenceScheme, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "--api-key: inference routes (/v1 models, completions, chat; /tokenize, /detokenize). Open when the server has no --api-key; the admin key also opens them.",
            });
            swagger.AddSecurityDefinition(AdminScheme, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "--admin-key: files, fine-tuning and /admin routes. Those routes answer 403 when the server has no --admin-key.",
            });
            // Free-form JSON (prompt as string or list, stop, message content): any value.
            swagger.MapType<JsonElement>(() => new OpenApiSchema());
            swagger.MapType<Stream>(() => new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" });
            swagger.SchemaFilter<RequiredFieldsSchemaFilter>();
            swagger.CustomSchemaIds(SchemaId);
            swagger.OperationFilter<KeyAndExampleOperationFilter>();
            swagger.DocumentFilter<MetricsDocumentFilter>();
        });
        return services;
    }

    public static WebApplication UseOpenApiDocumentation(this WebApplication app)
    {
        app.UseSwagger();
        app.UseSwaggerUI(ui =>
        {
            ui.SwaggerEndpoint("/swagger/v1/swagger.json", "llmserver v1");
            ui.RoutePrefix = "swagger";
        });
        return app;
    }

    /// <summary>A schema is named for its type alone (a nested type after its outer one): C# namespaces are no part of the wire.</summary>
    private static string SchemaId(Type type) => type.FullName![(type.Namespace is { Length: > 0 } ns ? ns.Length + 1 : 0)..].Replace('+', '.');

    /// <summary>Names the key each operation needs and gives the generation requests an example body.</summary>
    private sealed class KeyAndExampleOperationFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            IList<object> metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
            if (metadata.OfType<RequiredKeyMetadata>().LastOrDefault() is { } key)
            {
                string scheme = key.Scope == KeyScope.Admin ? AdminScheme : InferenceScheme;
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(scheme, context.Document)] = [] }];
            }
            string path = "/" + (context.ApiDescription.RelativePath ?? "");
            string? example = path switch
            {
                "/v1/chat/completions" => """
                    {"model": "gpt2", "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello, my name is"}],
                     "max_tokens": 12, "temperature": 0.7, "stream": false}
                    """,
                "/v1/completions" => """
                    {"model": "gpt2", "prompt": "Hello, my name is", "max_tokens": 12, "temperature": 0, "logprobs": 3}
                    """,
                "/tokenize" => """{"model": "gpt2", "prompt": "Hello, world!"}""",
                "/detokenize" => """{"model": "gpt2", "tokens": [15496, 11, 995, 0]}""",
                "/v1/fine_tuning/jobs" when context.ApiDescription.HttpMethod == "POST" => """
                    {"model": "gpt2", "training_file": "file-abc123", "suffix": "support",
                     "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "lora_rank": 16}}}}
                    """,
                _ => null,
            };
            // A streamed answer is SSE: "data: {chunk}" events, then "data: [DONE]".
            Type? chunk = path switch
            {
                "/v1/chat/completions" => typeof(ChatCompletionChunk),
                "/v1/completions" => typeof(CompletionChunk),
                _ => null,
            };
            if (chunk is not null && operation.Responses?.TryGetValue("200", out IOpenApiResponse? ok) == true && ok is OpenApiResponse okResponse)
            {
                okResponse.Content ??= new Dictionary<string, OpenApiMediaType>();
                okResponse.Content["text/event-stream"] = new OpenApiMediaType
                {
                    Schema = context.SchemaGenerator.GenerateSchema(chunk, context.SchemaRepository),
                };
                okResponse.Description = "One JSON response; with \"stream\": true, Server-Sent Events: one \"data: {chunk}\" per event (an error mid-stream is \"data: {\"error\": ...}\"), then \"data: [DONE]\".";
            }
            if (example is not null && operation.RequestBody?.Content is { } content && content.TryGetValue("application/json", out OpenApiMediaType? media))
            {
                media.Example = JsonNode.Parse(example);
            }
        }
    }

    /// <summary>OpenAI's required request fields (the records keep them nullable so the serving layer can name a missing one in its 400).</summary>
    private sealed class RequiredFieldsSchemaFilter : ISchemaFilter
    {
        public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
        {
            string[] required = context.Type == typeof(ChatCompletionRequest) ? ["model", "messages"]
                : context.Type == typeof(CompletionRequest) ? ["model", "prompt"]
                : context.Type == typeof(CreateFineTuningJobRequest) ? ["model", "training_file"]
                : [];
            if (required.Length > 0 && schema is OpenApiSchema concrete)
            {
                concrete.Required = new HashSet<string>(required);
            }
        }
    }

    /// <summary>/metrics is the Prometheus exporter's own endpoint, which API explorer does not see.</summary>
    private sealed class MetricsDocumentFilter : IDocumentFilter
    {
        public void Apply(OpenApiDocument document, DocumentFilterContext context)
        {
            document.Paths ??= [];
            document.Paths["/metrics"] = new OpenApiPathItem
            {
                Operations = new Dictionary<HttpMethod, OpenApiOperation>
                {
                    [HttpMethod.Get] = new OpenApiOperation
                    {
                        Summary = "Prometheus metrics: the engine's (llmserver_*), ASP.NET Core's and the .NET runtime's",
                        Tags = new HashSet<OpenApiTagReference> { new("Health", document) },
                        Responses = new OpenApiResponses
                        {
                            ["200"] = new OpenApiResponse
                            {
                                Description = "Prometheus text exposition format",
                                Content = new Dictionary<string, OpenApiMediaType>
                                {
                                    ["text/plain"] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
                                },
                            },
                        },
                    },
                },
            };
        }
    }
}
