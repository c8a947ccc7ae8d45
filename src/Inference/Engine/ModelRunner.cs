using LlmServer.Inference.KvCache;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Runtime;
using LlmServer.Inference.Scheduling;
using static TorchSharp.torch;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The only part of the engine that touches tensors: turns a scheduler decision into one batch,
/// runs the model over it, and hands back the logits of the requests that sample this step (and of the
/// prompt positions of requests that asked for prompt logprobs).
/// Must be called on the engine thread.
/// </summary>
public sealed class ModelRunner : IDisposable
{
    private readonly ICausalLanguageModel _model;
    private readonly PagedKvCache _cache;
    private readonly KvCacheManager _blocks;
    private readonly bool _ownsModel;
    private readonly bool _decodeInPlace;
    private readonly Func<Request, RequestWeights>? _weightsOf;
    private float[] _logits = [];
    private float[] _promptLogits = [];
    // A single pass's logits, handed out in place rather than copied (a batch's are megabytes), until the next step.
    private Tensor? _heldLogits;

    /// <param name="model">The model every request runs on, unless <paramref name="weightsOf"/> says otherwise.</param>
    /// <param name="ownsModel">Dispose the model and cache with the runner.</param>
    /// <param name="weightsOf">The weights each request runs on, when several models or adapters are served.</param>
    public ModelRunner(ICausalLanguageModel model, PagedKvCache cache, KvCacheManager blocks, bool ownsModel = true,
        Func<Request, RequestWeights>? weightsOf = null)
    {
        _model = model;
        _cache = cache;
        _blocks = blocks;
        _ownsModel = ownsModel;
        _weightsOf = weightsOf;
        _decodeInPlace = PagedDecodeAttention.Supports(cache);
    }

    public ICausalLanguageModel Model => _model;
    public int VocabularySize => _model.Shape.VocabSize;

    /// <summary>Runs one forward pass; the logits it returns are valid until the next call.</summary>
    public StepLogits Execute(SchedulerOutput output)
    {
        _heldLogits?.Dispose();
        _heldLogits = null;
        // Requests on different full models cannot share a forward pass; adapters on one model can,
        // so there is one pass per full model in the step (one, unless full fine-tunes are served).
        List<IGrouping<ICausalLanguageModel, ScheduledRequest>> passes = output.Scheduled
            .GroupBy(s => WeightsOf(s.Request).Model, ReferenceEqualityComparer.Instance as IEqualityComparer<ICausalLanguageModel>)
            .ToList();
        var sampling = new List<Request>();
        var prompt = new List<PromptLogitRows>();
        var layouts = new List<(ICausalLanguageModel Model, BatchLayout Layout)>(passes.Count);
        foreach (IGrouping<ICausalLanguageModel, ScheduledRequest> pass in passes)
        {
            // Single-token requests first (one attention group), then each longer chunk on its own.
            List<ScheduledRequest> ordered = pass.Where(s => s.NumScheduledTokens == 1).Concat(pass.Where(s => s.NumScheduledTokens > 1)).ToList();
            BatchLayout layout = BuildLayout(ordered);
            layouts.Add((pass.Key, layout));
            sampling.AddRange(layout.Sampling);
            int promptRowsBefore = prompt.Count == 0 ? 0 : prompt[^1].FirstRow + prompt[^1].Count;
            prompt.AddRange(layout.Prompt.Select(rows => rows with { FirstRow = promptRowsBefore + rows.FirstRow }));
        }
        int needed = sampling.Count * VocabularySize;
        int promptNeeded = prompt.Sum(rows => rows.Count) * VocabularySize;
        if (layouts.Count == 1)
        {
            _heldLogits = RunModel(layouts[0].Model, layouts[0].Layout, 0, 0, keepLogits: true);
            Memory<float> all = _heldLogits is null ? Memory<float>.Empty : new NativeFloats(_heldLogits).Memory;
            return new StepLogits(sampling, all[..needed], prompt, all.Slice(needed, promptNeeded));
        }
        if (_logits.Length < needed)
        {
            _logits = new float[needed];
        }
        if (_promptLogits.Length < promptNeeded)
        {
            _promptLogits = new float[promptNeeded];
        }
        int firstRow = 0;
        int firstPromptRow = 0;
        foreach ((ICausalLanguageModel model, BatchLayout layout) in layouts)
        {
            RunModel(model, layout, firstRow, firstPromptRow, keepLogits: false);
            firstRow += layout.SampleRows.Count;
            firstPromptRow += layout.PromptRows.Count;
        }
        return new StepLogits(sampling, _logits.AsMemory(0, needed), prompt, _promptLogits.AsMemory(0, promptNeeded));
    }

    private RequestWeights WeightsOf(Request request) => _weightsOf?.Invoke(request) ?? new RequestWeights(_model, null);

    /// <summary>
    /// Runs one pass and writes its sampled rows' logits into the buffer from <paramref name="firstRow"/> on,
    /// its prompt rows' into the prompt buffer from <paramref name="firstPromptRow"/> on; or, when
    /// <paramref name="keepLogits"/>, copies nothing and returns them (sampled rows, then prompt rows) for the caller to dispose.
    /// </summary>
    /// <returns>(M + P, V) float32 on the host when <paramref name="keepLogits"/> and there are any; otherwise null.</returns>
    private Tensor? RunModel(ICausalLanguageModel model, BatchLayout layout, int firstRow, int firstPromptRow, bool keepLogits)
    {
        Device device = model.Device;
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        Tensor tokenIds = tensor(layout.TokenIds.ToArray(), ScalarType.Int64, device);          // (N)
        Tensor positions = tensor(layout.Positions.ToArray(), ScalarType.Int64, device);        // (N)
        using var metadata = new AttentionMetadata
        {
            SlotMapping = tensor(layout.SlotMapping.ToArray(), ScalarType.Int64, device),      // (N)
            Groups = layout.Groups.Select(g => g.Build(device, _decodeInPlace)).ToList(),
        };
        using AdapterRouting? adapters = layout.AdapterRows.Count == 0 ? null : AdapterRouting.ForRows(layout.AdapterRows
            .Select(pair => new AdapterSegment(pair.Key, tensor(pair.Value.ToArray(), ScalarType.Int64, device))).ToList()); // rows (n_a)
        Tensor hidden = model.Forward(tokenIds, positions, new PagedAttention(metadata, _cache), adapters); // (N, C)
        int sampled = layout.SampleRows.Count;
        if (sampled + layout.PromptRows.Count == 0)
        {
            return null;
        }
        Tensor rows = tensor(layout.SampleRows.Concat(layout.PromptRows).ToArray(), ScalarType.Int64, device); // (M + P)
        Tensor selected = hidden.index_select(0, rows);                                          // (M + P, C)
        Tensor logits = model.Logits(selected).to(ScalarType.Float32).cpu().contiguous();       // (M + P, V)
        if (keepLogits)
        {
            return logits.DetachFromDisposeScope();
        }
        ReadOnlySpan<float> all = TensorMemory.AsFloatSpan(logits);
        all[..(sampled * VocabularySize)].CopyTo(_logits.AsSpan(firstRow * VocabularySize));
        all[(sampled * VocabularySize)..].CopyTo(_promptLogits.AsSpan(firstPromptRow * VocabularySize));
        return null;
    }

    private BatchLayout BuildLayout(List<ScheduledRequest> ordered)
    {
        int blockSize = _blocks.BlockSize;
        var layout = new BatchLayout();
        GroupBuilder? decodeGroup = null;
        foreach (ScheduledRequest item in ordered)
        {
            Request request = item.Request;
            IReadOnlyList<int> table = _blocks.BlockTable(request.RequestId);
            int start = item.FirstPosition;
            int end = start + item.NumScheduledTokens;

            GroupBuilder group;
            if (item.NumScheduledTokens == 1)
            {
                decodeGroup ??= layout.AddGroup(firstToken: layout.TokenIds.Count, queryLength: 1);
                group = decodeGroup;
            }
            else
            {
                group = layout.AddGroup(firstToken: layout.TokenIds.Count, queryLength: item.NumScheduledTokens);
            }
            group.AddSequence(contextStart: start, contextEnd: end, table, blockSize);

            LoraAdapter? adapter = WeightsOf(request).Adapter;
            List<long>? adapterRows = null;
            if (adapter is not null && !layout.AdapterRows.TryGetValue(adapter, out adapterRows))
            {
                adapterRows = [];
                layout.AdapterRows[adapter] = adapterRows;
            }
            for (int position = start; position < end; position++)
            {
                adapterRows?.Add(layout.TokenIds.Count);
                layout.TokenIds.Add(request.TokenIds[position]);
                layout.Positions.Add(position);
                layout.SlotMapping.Add(SlotOf(table, position, blockSize));
            }
            // Position p's logits predict token p + 1, so the prompt's last position is not a prompt logprob's.
            int promptEnd = Math.Min(end, request.PromptLength - 1);
            if (request.Sampling.PromptLogprobs is not null && start < promptEnd)
            {
                layout.Prompt.Add(new PromptLogitRows(request, start, promptEnd - start, layout.PromptRows.Count));
                int firstRowOfItem = layout.TokenIds.Count - (end - start);
                for (int position = start; position < promptEnd; position++)
                {
                    layout.PromptRows.Add(firstRowOfItem + position - start);
                }
            }
            if (item.SamplesToken)
            {
                layout.SampleRows.Add(layout.TokenIds.Count - 1);
                layout.Sampling.Add(request);
            }
        }
        return layout;
    }

    internal static long SlotOf(IReadOnlyList<int> blockTable, int position, int blockSize) =>
        (long)blockTable[position / blockSize] * blockSize + position % blockSize;

    public void Dispose()
    {
        _heldLogits?.Dispose();
        _heldLogits = null;
        if (_ownsModel)
        {
            _cache.Dispose();
            _model.Dispose();
        }
    }

    private sealed class BatchLayout
    {
        public List<long> TokenIds { get; } = [];
        public List<long> Positions { get; } = [];
        public List<long> SlotMapping { get; } = [];
        public List<long> SampleRows { get; } = [];
        public List<Request> Sampling { get; } = [];
        /// <summary>Rows of the batch whose logits give prompt logprobs, in the order of <see cref="Prompt"/>.</summary>
        public List<long> PromptRows { get; } = [];
        public List<PromptLogitRows> Prompt { get; } = [];
        public List<GroupBuilder> Groups { get; } = [];
        /// <summary>The rows (tokens) of the batch each adapter applies to; the rest run on the bare model.</summary>
        public Dictionary<LoraAdapter, List<long>> AdapterRows { get; } = new(ReferenceEqualityComparer.Instance);

        public GroupBuilder AddGroup(int firstToken, int queryLength)
        {
            var group = new GroupBuilder(firstToken, queryLength);
            Groups.Add(group);
            return group;
        }
    }

    /// <summary>Collects the key slots and causal limits of the sequences in one attention group.</summary>
    private sealed class GroupBuilder(int firstToken, int queryLength)
    {
        private readonly List<(int ContextStart, int[] Blocks)> _sequences = [];
        private int _blockSize;

        public void AddSequence(int contextStart, int contextEnd, IReadOnlyList<int> table, int blockSize)
        {
            _blockSize = blockSize;
            int blockCount = (contextEnd + blockSize - 1) / blockSize;
            var blocks = new int[blockCount];
            for (int block = 0; block < blockCount; block++)
            {
                blocks[block] = table[block];
            }
            _sequences.Add((contextStart, blocks));
        }

        /// <param name="decodeInPlace">A decode group keeps its block tables on the host for <see cref="PagedDecodeAttention"/>.</param>
        public AttentionGroup Build(Device device, bool decodeInPlace)
        {
            int b = _sequences.Count;
            if (b == 1 && queryLength > 1 && _sequences[0].ContextStart == 0)
            {
                return new AttentionGroup
                {
                    FirstToken = firstToken, SequenceCount = 1, QueryLength = queryLength, KeyLength = queryLength,
                    StartsAtFirstToken = true,
                };
            }
            int blocksPerSequence = _sequences.Max(s => s.Blocks.Length);
            int keyLength = blocksPerSequence * _blockSize;
            if (decodeInPlace && queryLength == 1)
            {
                var keyCounts = new int[b];
                var blockTables = new int[b * blocksPerSequence];
                for (int s = 0; s < b; s++)
                {
                    (int contextStart, int[] blocks) = _sequences[s];
                    keyCounts[s] = contextStart + 1;
                    blocks.CopyTo(blockTables, s * blocksPerSequence);
                }
                return new AttentionGroup
                {
                    FirstToken = firstToken, SequenceCount = b, QueryLength = 1, KeyLength = keyLength,
                    DecodeContexts = new DecodeContexts(keyCounts, blockTables, blocksPerSequence),
                };
            }
            var keyBlocks = new long[b * blocksPerSequence];
            var mask = new bool[b * queryLength * keyLength];
            for (int s = 0; s < b; s++)
            {
                (int contextStart, int[] blocks) = _sequences[s];
                for (int block = 0; block < blocks.Length; block++)
                {
                    keyBlocks[s * blocksPerSequence + block] = blocks[block];
                }
                for (int q = 0; q < queryLength; q++)
                {
                    // Query q sits at position contextStart + q and sees every key up to itself.
                    int visible = contextStart + q + 1;
                    Array.Fill(mask, true, (s * queryLength + q) * keyLength, visible);
                }
            }
            return new AttentionGroup
            {
                FirstToken = firstToken,
                SequenceCount = b,
                QueryLength = queryLength,
                KeyLength = keyLength,
                KeyBlocks = tensor(keyBlocks, ScalarType.Int64, device),                        // (B * Tk / block size)
                Mask = tensor(mask, device: device).view(b, 1, queryLength, keyLength),         // (B, 1, Tq, Tk)
            };
        }
    }
}
