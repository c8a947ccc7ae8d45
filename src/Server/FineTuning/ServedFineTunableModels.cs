using LlmServer.Inference.Engine;
using LlmServer.OpenAi;

namespace LlmServer.FineTuning;

/// <summary>Any full model the engine serves can be fine-tuned (by its name or an alias); an adapter cannot.</summary>
public sealed class ServedFineTunableModels(IEngineClient engine) : IFineTunableModels
{
    public FineTunableModel? Find(string name)
    {
        Task<ServedModel> ready = engine.Ready;
        if (!ready.IsCompleted)
        {
            // Names are only known for sure once the engine has loaded (as on the inference routes).
            throw ApiException.NotReady();
        }
        if (engine.Models.Resolve(name) is not { } model)
        {
            return null;
        }
        return model.Kind == ServedModelKind.Adapter
            ? throw ApiException.InvalidParameter("model", $"'{name}' is a LoRA adapter; fine-tune its base model '{model.Parent}' instead.")
            : new FineTunableModel(name, model.Directory, model.AdaptableLayers);
    }
}
