using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>A lookup table of row vectors; Hugging Face's nn.Embedding with parameter "weight".</summary>
public sealed class EmbeddingTable : Module
{
    private readonly Parameter weight;

    public EmbeddingTable(int rows, int width, ScalarType dtype, Device device) : base("embedding")
    {
        weight = new Parameter(empty([rows, width], dtype, device));
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public Tensor Forward(Tensor ids)
    {
        if (ids.dim() == 1)
        {
            return weight.index_select(0, ids);                                          // (N, C)
        }
        using Tensor flat = ids.reshape(-1);                                             // (B*T)
        using Tensor rows = weight.index_select(0, flat);                                // (B*T, C)
        return rows.view(ids.shape[0], ids.shape[1], weight.shape[1]);                   // (B, T, C)
    }
}
