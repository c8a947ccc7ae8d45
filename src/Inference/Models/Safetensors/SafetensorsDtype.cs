namespace LlmServer.Inference.Models.Safetensors;

/// <summary>The element types this server reads and writes; the names are the ones a safetensors header uses.</summary>
public enum SafetensorsDtype
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    BOOL,
}
