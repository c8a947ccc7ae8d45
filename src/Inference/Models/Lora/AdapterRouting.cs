using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// Which LoRA adapters a forward pass applies, and to which rows. Serving flattens many requests
/// into one (N, C) batch, so each adapter gets the rows of its requests (a segment); rows in no
/// segment run the base weights alone. Training applies one adapter to the whole (B, T, C) input.
/// Owns the row index tensors it was given.
/// </summary>
public sealed class AdapterRouting : IDisposable
{
    private readonly LoraAdapter? _everyRow;
    private readonly IReadOnlyList<AdapterSegment> _segments;

    private AdapterRouting(LoraAdapter? everyRow, IReadOnlyList<AdapterSegment> segments)
    {
        _everyRow = everyRow;
        _segments = segments;
    }

    /// <summary>One adapter on every row, whatever the input's shape (training).</summary>
    public static AdapterRouting ForAllRows(LoraAdapter adapter) => new(adapter, []);

    /// <summary>
    /// Each segment's adapter on its rows of a flattened (N, C) batch (serving). The row sets must
    /// not overlap: a row gets the updates of every segment it is in.
    /// </summary>
    public static AdapterRouting ForRows(IReadOnlyList<AdapterSegment> segments) => new(null, segments);

    public IReadOnlyList<AdapterSegment> Segments => _segments;

    /// <summary>
    /// Adds to <paramref name="baseOutput"/> (the layer's base product, fresh memory that it owns) the
    /// update of every adapter that targets <paramref name="modulePath"/>, on that adapter's rows.
    /// Returns the result, which is <paramref name="baseOutput"/> itself when it was updated in place.
    /// </summary>
    public Tensor AddUpdates(string modulePath, Tensor x, Tensor baseOutput)
    {
        // Without autograd (serving) the updates go into the product in place; while recording,
        // every step stays out of place so that backward sees the graph it needs.
        bool recording = torch.is_grad_enabled();
        Tensor y = baseOutput;
        if (_everyRow is not null)
        {
            if (!_everyRow.TryGetLayer(modulePath, out LoraLayer? layer))
            {
                return y;
            }
            using Tensor update = layer.Update(x);                                       // (..., out)
            if (!recording)
            {
                return y.add_(update, _everyRow.Scale);
            }
            using (y)
            {
                return y.add(update, _everyRow.Scale);                                   // (..., out)
            }
        }
        foreach (AdapterSegment segment in _segments)
        {
            if (!segment.Adapter.TryGetLayer(modulePath, out LoraLayer? layer))
            {
                continue;
            }
            using Tensor rows = x.index_select(0, segment.Rows);                         // (n, in)
            using Tensor update = layer.Update(rows);                                    // (n, out)
            if (!recording)
            {
                y.index_add_(0, segment.Rows, update, segment.Adapter.Scale);
                continue;
            }
            Tensor next = y.index_add(0, segment.Rows, update, segment.Adapter.Scale);   // (N, out)
            y.Dispose();
            y = next;
        }
        return y;
    }

    public void Dispose()
    {
        foreach (AdapterSegment segment in _segments)
        {
            segment.Rows.Dispose();
        }
    }
}

/// <summary>An adapter and the rows of a flattened batch it applies to.</summary>
/// <param name="Rows">(n) int64 row indices into the batch, on the model's device.</param>
public sealed record AdapterSegment(LoraAdapter Adapter, Tensor Rows);
