using LlmServer.Host;
using LlmServer.Inference.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Commands;

/// <summary>Where the offline trainers (train, fine-tune) run, checked before any data is read.</summary>
public static class TrainingDevice
{
    /// <exception cref="CommandLineException">The device is not one this build can use.</exception>
    public static Device Select(string name, int threads)
    {
        if (name.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!cuda.is_available())
            {
                throw new CommandLineException($"--device {name}: CUDA is not available to this build (the CPU build of TorchSharp, or no GPU)");
            }
            return torch.device(name);
        }
        if (name != "cpu")
        {
            throw new CommandLineException($"--device must be cpu, cuda or cuda:N, got '{name}'");
        }
        if (threads > 0)
        {
            set_num_threads(threads);
        }
        // As for serving: MKL's fast kernels on every x86-64 CPU that has them (see MklCpuDispatch).
        MklCpuDispatch.EnsureApplied();
        NativeMemoryTuning.ReturnLargeBlocksToTheSystem();
        return CPU;
    }
}
