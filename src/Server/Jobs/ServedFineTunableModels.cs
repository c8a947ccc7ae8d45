using LlmServer.Inference.Engine;
using LlmServer.Serving;

namespace LlmServer.Jobs;

/// <summary>The one model the engine serves is the one that can be fine-tuned.</summary>
public sealed class ServedFineTunableModels(IEngineClient engine) : IFineTunableModels
{
    public FineTunableModel? Find(string name)
    {
        Task<ServedModel> ready = engine.Ready;
        if (!ready.IsCompleted)
        {
            // Its name is only known for sure once it has loaded (as on the inference routes).
            throw ApiException.NotReady();
        }
        return ready.IsCompletedSuccessfully && ready.Result.Name == name ? new FineTunableModel(ready.Result.Name, ready.Result.Directory) : null;
    }
}
