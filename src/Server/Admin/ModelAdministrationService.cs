using LlmServer.Inference.Engine;
using LlmServer.OpenAi;
using LlmServer.OpenAi.Models;

namespace LlmServer.Admin;

/// <summary>
/// The admin API over the engine's served models: load and unload models and adapters, and point
/// aliases. The engine applies each change between two steps; this turns its refusals into
/// OpenAI-shaped errors (400 bad input, 404 unknown name, 409 refused because of what is served).
/// </summary>
public sealed class ModelAdministrationService(IEngineClient engine, IEngineModelAdministration administration,
    ICheckpointCatalog? checkpoints = null)
{
    public async Task<ModelCard> LoadAsync(LoadModelRequest request)
    {
        EnsureReady();
        string path = Required(request.Path, "path");
        string name = Required(request.Name, "name");
        ServedModel model = await Apply(() => administration.LoadModelAsync(name, path, request.Base));
        return ModelCards.WithPath(ModelCards.For(model), model);
    }

    /// <summary>/v1/models with each card's directory: what an operator needs, which /v1 keeps from the inference key.</summary>
    public ModelList ListModels()
    {
        EnsureReady();
        return new ModelList(ModelCards.ForCatalog(engine.Models, withPaths: true));
    }

    public async Task<ModelUnloaded> UnloadAsync(UnloadModelRequest request)
    {
        EnsureReady();
        string name = Required(request.Model ?? request.Name, "model");
        await Apply(async () =>
        {
            await administration.UnloadModelAsync(name);
            return true;
        });
        return new ModelUnloaded(name);
    }

    public async Task<AliasObject> SetAliasAsync(SetAliasRequest request)
    {
        EnsureReady();
        string alias = Required(request.Alias, "alias");
        string target = Required(request.Model, "model");
        // A fine-tuning checkpoint that is not served yet is loaded for the alias, and freed when
        // the alias moves on.
        string? loadFrom = engine.Models.Resolve(target) is null ? checkpoints?.DirectoryOf(target) : null;
        ServedModel model = await Apply(() => administration.SetAliasAsync(alias, target, loadFrom));
        return new AliasObject(alias, model.Name);
    }

    public AliasList ListAliases()
    {
        EnsureReady();
        return new AliasList(engine.Models.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => new AliasObject(a.Key, a.Value)).ToList());
    }

    public async Task<AliasDeleted> RemoveAliasAsync(string alias)
    {
        EnsureReady();
        await Apply(async () =>
        {
            await administration.RemoveAliasAsync(alias);
            return true;
        });
        return new AliasDeleted(alias);
    }

    private void EnsureReady()
    {
        if (!engine.Ready.IsCompletedSuccessfully)
        {
            throw ApiException.NotReady();
        }
    }

    private static string Required(string? value, string param) =>
        string.IsNullOrWhiteSpace(value) ? throw new ApiException(StatusCodes.Status400BadRequest, $"'{param}' is required.", param: param, code: "missing_required_parameter") : value;

    private static async Task<T> Apply<T>(Func<Task<T>> change)
    {
        try
        {
            return await change();
        }
        catch (ModelAdministrationException e)
        {
            (int status, string code) = e.Error switch
            {
                ModelAdministrationError.NotFound => (StatusCodes.Status404NotFound, "model_not_found"),
                ModelAdministrationError.Conflict => (StatusCodes.Status409Conflict, "conflict"),
                _ => (StatusCodes.Status400BadRequest, "invalid_model"),
            };
            throw new ApiException(status, e.Message, param: e.Param, code: code);
        }
    }
}
