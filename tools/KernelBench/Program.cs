using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using KernelBench;

// Issue 18 groundwork: every product candidate for float32 / bfloat16 / int8 weights on this CPU, timed
// in one run against the read floor (1 row) and the measured GEMM roof (32 and 256 rows). Prints a
// markdown table; docs/notes/dtype-kernels.md keeps one run's output.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int threads = Environment.ProcessorCount;
torch.set_num_threads(threads);
using var mode = torch.inference_mode();
double budget = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 0.4;   // seconds per candidate

double Median(Action act)
{
    long w0 = Stopwatch.GetTimestamp();
    act();
    double warm = Stopwatch.GetElapsedTime(w0).TotalSeconds;
    if (warm > 2)
    {
        return warm;                       // one sample is plenty for the candidates that lose by 10x
    }
    var times = new List<double>();
    var total = Stopwatch.StartNew();
    while (times.Count < 3 || (total.Elapsed.TotalSeconds < budget && times.Count < 200))
    {
        long t0 = Stopwatch.GetTimestamp();
        act();
        times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
    }
    times.Sort();
    return times[times.Count / 2];
}

unsafe
{
    Console.WriteLine($"threads {threads}, torch threads {torch.get_num_threads()}, AVX2 {System.Runtime.Intrinsics.X86.Avx2.IsSupported}, AVX-512F {System.Runtime.Intrinsics.X86.Avx512F.IsSupported}, AVX-VNNI {System.Runtime.Intrinsics.X86.AvxVnni.IsSupported}, MKL bf16 GEMM {(Native.GemmBf16 != null)}");

    // 1. Bandwidth: 512 MiB, far past the caches.
    double bandwidth;
    using (var big = torch.rand(128L << 20))
    using (var copy = torch.empty_like(big))
    {
        long bytes = big.numel() * 4;
        double torchSum = Median(() => { using var s = big.sum(); });
        float* p = (float*)Native.Data(big);
        double ownSum = Median(() => Kernels.ReadSum(p, big.numel()));
        double copyTime = Median(() => copy.copy_(big));
        bandwidth = Math.Max(bytes / torchSum, bytes / ownSum);
        Console.WriteLine($"read: torch.sum {bytes / torchSum / 1e9:F1} GB/s, own AVX2 sum {bytes / ownSum / 1e9:F1} GB/s; copy_ {2.0 * bytes / copyTime / 1e9:F1} GB/s (read+write)");
    }
    // GEMM roof measured: MKL sgemm on a large square product.
    double roof;
    using (var a = torch.randn(2048, 2048))
    using (var b = torch.randn(2048, 2048))
    {
        double t = Median(() => { using var c = a.mm(b); });
        roof = 2.0 * 2048 * 2048 * 2048 / t;
        // bf16 mm is so slow here (no AVX512-BF16) that 2048^3 takes a minute: 512^3 tells the same.
        using var ab = a[..512, ..512].contiguous().to(ScalarType.BFloat16);
        using var bb = b[..512, ..512].contiguous().to(ScalarType.BFloat16);
        double tb = Median(() => { using var c = ab.mm(bb); });
        Console.WriteLine($"roof: f32 mm 2048^3 {roof / 1e9:F1} GFLOP/s; bf16 torch mm 512^3 {2.0 * 512 * 512 * 512 / tb / 1e9:F1} GFLOP/s");
    }
    Console.WriteLine();
    Console.WriteLine("| shape in→out | rows | candidate | median µs | 1 row: GB/s (% of floor) · N rows: GFLOP/s (% of f32 roof) | max rel err vs f32 |");
    Console.WriteLine("|---|---|---|---|---|---|");

    (string Name, int In, int Out)[] shapes =
    [
        ("gpt2 qkv", 768, 2304), ("gpt2 attn out", 768, 768), ("gpt2 mlp up", 768, 3072), ("gpt2 mlp down", 3072, 768), ("gpt2 head", 768, 50257),
        ("qwen q/o", 896, 896), ("qwen k/v", 896, 128), ("qwen mlp gate/up", 896, 4864), ("qwen mlp down", 4864, 896), ("qwen head", 896, 151936),
    ];
    string? only = args.Length > 2 ? args[2] : null;      // e.g. "server": only the serving forms (and f32 packed)
    string? shapeFilter = args.Length > 3 ? args[3] : null;
    if (shapeFilter is not null) shapes = shapes.Where(s => s.Name.Contains(shapeFilter)).ToArray();
    int[] rowCounts = args.Length > 1 ? args[1].Split(',').Select(int.Parse).ToArray() : [1, 32, 256];
    foreach (var (name, inputs, outputs) in shapes)
    {
        // A decode step streams every layer's weights from DRAM: the whole model is far past the 16 MiB
        // L3. Repeating one small matrix would time it from cache, so each call takes the next of enough
        // copies to fill 128 MiB at float32 (32 MiB at int8, still twice the L3).
        int copies = (int)Math.Max(1, Math.Ceiling((128.0 * (1 << 20)) / (4.0 * inputs * outputs)));
        var ws = new Tensor[copies]; var wbs = new Tensor[copies]; var scales = new Tensor[copies]; var wqs = new Tensor[copies];
        var packs = new MklPackedMatrix?[copies];
        var int8s = new IServingMatrix[copies];
        var bf16s = new IServingMatrix[copies];
        for (int c = 0; c < copies; c++)
        {
            ws[c] = torch.randn(outputs, inputs) * 0.02f;                            // (out, in) like nn.Linear
            wbs[c] = ws[c].to(ScalarType.BFloat16);
            scales[c] = ws[c].abs().amax([1]) / 127f;                                // (out) per-channel symmetric
            wqs[c] = (ws[c] / scales[c].unsqueeze(1)).round().clamp(-127, 127).to(ScalarType.Int8);
            packs[c] = MklPackedMatrix.TryPack(ws[c], storedAsOutByIn: true);
            int8s[c] = ServingMatrix.TryCreate(ws[c], storedAsOutByIn: true, WeightFormat.Int8)!;
            bf16s[c] = ServingMatrix.TryCreate(ws[c], storedAsOutByIn: true, WeightFormat.BFloat16)!;
        }
        int turn = 0;
        int Next() => turn = (turn + 1) % copies;
        var seconds = new Dictionary<string, double>();                              // candidate -> s per GFLOP at the last row count
        foreach (int n in rowCounts)
        {
            using var x = torch.randn(n, inputs);
            using var xb = x.to(ScalarType.BFloat16);
            using var reference = torch.nn.functional.linear(x, ws[0]);
            using var y = torch.empty(n, outputs);
            var xq = new sbyte[n * inputs];
            var xa = new byte[n * inputs];
            var xs = new float[n];
            float refMax = reference.abs().max().ToSingle();

            void Row(string candidate, double bytesPerWeight, Action act, Func<Tensor> result)
            {
                if (only is not null && !candidate.Contains("server") && !candidate.Contains(only))
                {
                    return;
                }
                double gflop = 2.0 * n * inputs * outputs / 1e9;
                if (seconds.TryGetValue(candidate, out double perGflop) && perGflop * gflop > 5)
                {
                    Console.WriteLine($"| {name} {inputs}→{outputs} | {n} | {candidate} | skipped: ~{perGflop * gflop:F0} s a call at its rate with fewer rows | | |");
                    return;
                }
                double t = Median(act);
                seconds[candidate] = t / gflop;
                turn = copies - 1;                 // the checked call below uses copy 0, the reference's
                act();
                string rate;
                if (n == 1)
                {
                    double bytes = (double)inputs * outputs * bytesPerWeight;
                    rate = $"{bytes / t / 1e9:F1} GB/s ({100 * bytes / bandwidth / t:F0}%)";
                }
                else
                {
                    double flops = 2.0 * n * inputs * outputs;
                    rate = $"{flops / t / 1e9:F1} GFLOP/s ({100 * flops / t / roof:F0}%)";
                }
                using var r = result();
                float err = (r.to(ScalarType.Float32) - reference).abs().max().ToSingle() / refMax;
                Console.WriteLine($"| {name} {inputs}→{outputs} | {n} | {candidate} | {t * 1e6:F0} | {rate} | {err:E1} |");
            }

            Tensor? last = null;
            Row("f32 torch linear", 4, () => { last?.Dispose(); last = torch.nn.functional.linear(x, ws[Next()]); }, () => last!.alias());
            if (packs[0] is not null)
            {
                Row("f32 MKL packed (server now)", 4, () => { last?.Dispose(); last = packs[Next()]!.Multiply(x, null); }, () => last!.alias());
            }
            Row("bf16 torch linear", 2, () => { last?.Dispose(); last = torch.nn.functional.linear(xb, wbs[Next()]); }, () => last!.alias());
            if (Native.GemmBf16 != null)
            {
                Row("bf16 MKL gemm_bf16bf16f32", 2, () => Native.MklBf16((ushort*)Native.Data(wbs[Next()]), (ushort*)Native.Data(xb), (float*)Native.Data(y), n, inputs, outputs), () => y.alias());
            }
            Row("bf16 own AVX2 (x f32)", 2, () => Kernels.Bf16((ushort*)Native.Data(wbs[Next()]), (float*)Native.Data(x), (float*)Native.Data(y), n, inputs, outputs), () => y.alias());
            if (n == 1)
            {
                Row("int8 own AVX2 dequant (x f32)", 1, () => { int c = Next(); Kernels.Int8Dequant((sbyte*)Native.Data(wqs[c]), (float*)Native.Data(scales[c]), (float*)Native.Data(x), (float*)Native.Data(y), n, inputs, outputs); }, () => y.alias());
            }
            fixed (sbyte* pq = xq)
            fixed (byte* pa = xa)
            fixed (float* ps = xs)
            {
                sbyte* q = pq; byte* a = pa; float* s = ps;
                Row("int8 own AVX2 dot (x int8/row)", 1, () => { int c = Next(); Kernels.Int8Dot((sbyte*)Native.Data(wqs[c]), (float*)Native.Data(scales[c]), (float*)Native.Data(x), (float*)Native.Data(y), n, inputs, outputs, q, a, s); }, () => y.alias());
            }
            Row("int8 server Int8Matrix", 1, () => { last?.Dispose(); last = int8s[Next()].Multiply(x, null); }, () => last!.alias());
            Row("bf16 server Bf16Matrix", 2, () => { last?.Dispose(); last = bf16s[Next()].Multiply(x, null); }, () => last!.alias());
            // The only int8 route TorchSharp reaches: dequantize to f32 each call, then the f32 product.
            Row("int8 torch dequant+linear", 1, () => { last?.Dispose(); int c = Next(); using var wf = wqs[c].to(ScalarType.Float32).mul_(scales[c].unsqueeze(1)); last = torch.nn.functional.linear(x, wf); }, () => last!.alias());
            last?.Dispose();
        }
        foreach (var t in ws.Concat(wbs).Concat(scales).Concat(wqs)) t.Dispose();
        foreach (var p in packs) p?.Dispose();
        foreach (var m in int8s.Concat(bf16s)) m.Dispose();
    }
}
