using LlmServer.Inference.Quantization;
using LlmServer.Inference.Scheduling;
using static TorchSharp.torch;

namespace LlmServer.Inference.Engine;

public sealed record EngineOptions
{
    public required string ModelDirectory { get; init; }
    /// <summary>The name clients use in "model".</summary>
    public required string ServedModelName { get; init; }
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>The model's compute dtype: float32 on CPU; float16 or bfloat16 are for CUDA.</summary>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;
    /// <summary>How projection weights are kept for serving on the CPU (bfloat16 or int8 halve or quarter the bytes a step reads).</summary>
    public WeightFormat Weights { get; init; } = WeightFormat.Float32;
    /// <summary>The KV cache's dtype; null follows <see cref="Dtype"/>. bfloat16 holds twice float32's tokens in the same memory.</summary>
    public ScalarType? KvCacheDtype { get; init; }
    /// <summary>Longest prompt + completion; defaults to the model's n_positions and may not exceed it.</summary>
    public int? MaxModelLen { get; init; }
    /// <summary>Tokens per KV-cache block.</summary>
    public int BlockSize { get; init; } = 16;
    /// <summary>Bytes the KV cache may take on the device.</summary>
    public long KvCacheMemoryBytes { get; init; } = 1L << 30;
    /// <summary>When set, the KV cache takes this fraction of the device memory left after the weights, instead of a byte count.</summary>
    public double? KvCacheMemoryFraction { get; init; }
    public SchedulerOptions Scheduler { get; init; } = new();
    /// <summary>Reuse the KV blocks of prompt prefixes seen before (system prompts, chat history).</summary>
    public bool EnablePrefixCaching { get; init; } = true;
    /// <summary>Requests that may wait beyond the MaxNumSeqs that can run; more are refused, not queued.</summary>
    public int MaxQueuedRequests { get; init; } = 256;
    /// <summary>
    /// The most of the engine thread's time background work (fine-tuning) takes while requests are
    /// in flight, from 0 (only when idle) to 1 (a slice after every step). It always runs when idle.
    /// </summary>
    public double BackgroundShare { get; init; } = 0.5;
    /// <summary>Intra-op threads for TorchSharp on CPU; 0 leaves libtorch's default.</summary>
    public int CpuThreads { get; init; }
}
