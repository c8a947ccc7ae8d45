using LlmServer.Inference.KvCache;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using LlmServer.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Engine;

/// <summary>A checkpoint directory loaded for serving: weights ready for inference, and the tokenizer, chat template and sampling defaults that go with them.</summary>
internal sealed record ServingCheckpoint(ICausalLanguageModel Model, ITokenizer Tokenizer, ChatPromptFormatter ChatFormatter)
{
    public GenerationDefaults GenerationDefaults { get; init; } = GenerationDefaults.None;
}

/// <summary>What the engine runs on once started, and the model it serves first.</summary>
internal sealed record LoadedEngine(Scheduler Scheduler, ModelRunner Runner, PagedKvCache Cache, ModelRegistry Registry, ServedModel Served);

/// <summary>
/// Loads checkpoints for serving, the same way for the model given at start and for every model
/// loaded later through <see cref="ModelRegistry"/>; at start it also sizes the paged KV cache
/// that all of them share. Engine thread only.
/// </summary>
internal static class EngineLoader
{
    /// <summary>Loads the model the options name, sizes the KV cache for it, and builds the engine's parts around them.</summary>
    public static LoadedEngine Start(EngineOptions options)
    {
        MklCpuDispatch.EnsureApplied();
        if (options.CpuThreads > 0)
        {
            torch.set_num_threads(options.CpuThreads);
            KernelThreads.Count = options.CpuThreads;
        }
        NativeMemoryTuning.KeepFreedMemoryForReuse();
        Device device = torch.device(options.Device);
        var started = DateTimeOffset.UtcNow;
        ServingCheckpoint checkpoint = LoadCheckpoint(options.ModelDirectory, options.Dtype, device, options.Weights);
        try
        {
            ModelShape shape = checkpoint.Model.Shape;
            int maxModelLen = options.MaxModelLen ?? shape.MaxPositions;
            if (maxModelLen > shape.MaxPositions)
            {
                throw new ArgumentException($"max model length {maxModelLen} exceeds the model's {shape.MaxPositions} positions");
            }
            int blockCount = KvCacheBlockCount(options, shape, maxModelLen);
            var cache = new PagedKvCache(shape, blockCount, options.BlockSize, KvCacheDtype(options), device);
            var blocks = new KvCacheManager(new BlockPool(blockCount), options.BlockSize, options.EnablePrefixCaching);
            var registry = new ModelRegistry(options.ServedModelName, shape, options.Dtype, options.Weights, device, maxModelLen);
            var runner = new ModelRunner(checkpoint.Model, cache, blocks, ownsModel: false,
                weightsOf: request => registry.Live(request.WeightsId).ForRunner);
            ServedModel served = registry.AddFull(options.ServedModelName, options.ModelDirectory, checkpoint, started);
            return new LoadedEngine(new Scheduler(options.Scheduler, blocks), runner, cache, registry, served);
        }
        catch
        {
            checkpoint.Model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads a Hugging Face model directory for serving. A tokenizer with more tokens than the
    /// weights have rows is refused as a <see cref="CheckpointFormatException"/>: the two do not
    /// belong together. The weights are freed if anything is refused.
    /// </summary>
    /// <param name="weights">The form serving keeps projection weights in (see <see cref="WeightFormat"/>).</param>
    /// <param name="checkShape">Throws to refuse the weights' shape before the rest is loaded.</param>
    public static ServingCheckpoint LoadCheckpoint(string directory, ScalarType dtype, Device device, WeightFormat weights = WeightFormat.Float32,
        Action<ModelShape>? checkShape = null)
    {
        ICausalLanguageModel model = ModelArchitectures.Load(directory, dtype, device);
        try
        {
            checkShape?.Invoke(model.Shape);
            ITokenizer tokenizer = ModelTokenizer.Load(directory);
            if (tokenizer.VocabSize > model.Shape.VocabSize)
            {
                throw new CheckpointFormatException(Path.Combine(directory, "config.json"),
                    $"the tokenizer has {tokenizer.VocabSize} tokens but vocab_size is {model.Shape.VocabSize}; they do not belong together");
            }
            var formatter = ChatPromptFormatter.Load(directory, tokenizer);
            GenerationDefaults generationDefaults = GenerationDefaults.Load(directory);
            model.PrepareForServing(weights);
            model.ReleaseFullPrecisionWeights();
            NativeMemoryTuning.ReturnFreedMemoryOnce();
            return new ServingCheckpoint(model, tokenizer, formatter) { GenerationDefaults = generationDefaults };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The KV cache's dtype: as asked, or the model's.</summary>
    public static ScalarType KvCacheDtype(EngineOptions options) => options.KvCacheDtype ?? options.Dtype;

    /// <summary>How many blocks the KV cache gets: what its memory budget holds, but no more than the sequences can use.</summary>
    private static int KvCacheBlockCount(EngineOptions options, ModelShape shape, int maxModelLen)
    {
        long bytesPerBlock = PagedKvCache.BytesPerBlock(shape, options.BlockSize, KvCacheDtype(options));
        long cacheBytes = options.KvCacheMemoryFraction is double fraction
            ? (long)(fraction * DeviceMemory.AvailableBytes(options.Device))
            : options.KvCacheMemoryBytes;
        int blocksForOneSequence = (maxModelLen + options.BlockSize - 1) / options.BlockSize;
        // A small model would turn a byte budget meant for a big one into far more blocks than
        // MaxNumSeqs full-length sequences can use; twice that leaves room for the prefix cache.
        long usefulBlocks = 2L * options.Scheduler.MaxNumSeqs * blocksForOneSequence;
        int blockCount = (int)Math.Min(Math.Min(int.MaxValue, usefulBlocks), cacheBytes / bytesPerBlock);
        if (blockCount < blocksForOneSequence)
        {
            throw new ArgumentException(
                $"the KV cache budget of {cacheBytes} bytes holds {blockCount} blocks, " +
                $"fewer than the {blocksForOneSequence} one {maxModelLen}-token sequence needs " +
                $"({bytesPerBlock} bytes per block); raise the KV cache memory or lower the max model length");
        }
        return blockCount;
    }
}
