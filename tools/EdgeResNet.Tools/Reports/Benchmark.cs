using EdgeResNet.Common;
using System.Diagnostics;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx;

namespace EdgeResNet.Tools.Reports;

public sealed record BenchReport(string Model, int Threads, int Frames, string Kernel, double RuntimeMs, double RuntimeFps, double? OrtMs, double? OrtFps, double? Ratio)
{
    /// <summary>Frames run at once, each on its own engine of <see cref="Threads"/> threads (1: latency of one frame).</summary>
    public int FramesInFlight { get; init; } = 1;
    /// <summary>RAM of the runtime's plan (its budget: <see cref="RamBudgetBytes"/>, null for the default).</summary>
    public long RuntimeRamBytes { get; init; }
    public long? RamBudgetBytes { get; init; }
    /// <summary>With a second budget to compare: that plan's RAM and median latency, timed in turn with the first, and runtime_ms / baseline_ms.</summary>
    public long? BaselineRamBudgetBytes { get; init; }
    public long? BaselineRamBytes { get; init; }
    public double? BaselineMs { get; init; }
    public double? BaselineRatio { get; init; }
}

/// <summary>
/// Latency of the runtime on sample frames, and in the same run of ONNX Runtime fp32 on the
/// exported float model: the runtime runs each frame on <c>threads</c> threads, ONNX Runtime
/// gets <c>threads</c> intra-op threads. With <c>framesInFlight</c> &gt; 1 the runtime runs that many
/// engines on different frames at once (throughput; ONNX Runtime still runs one frame at a time).
/// With one frame in flight the two run in turn, five frames at a time (<see cref="TimeInBlocks"/>).
/// </summary>
public static class Benchmark
{
    /// <param name="imagesDir">Sample photos (the evaluation split); null: all-zero input frames.</param>
    /// <param name="floatNetwork">The float network for the ONNX Runtime comparison; null: runtime only.</param>
    /// <param name="fromFile">Read the weights through the file every frame (a system call per read); else from the image
    /// held in RAM, as a memory-mapped (XIP) QSPI flash is read. Either way every weight is streamed and unpacked per frame.</param>
    /// <param name="ramBudgetBytes">The runtime's RAM budget (null: the default for the threads).</param>
    /// <param name="baselineRamBudgetBytes">A second plan, for this budget, timed in turn with the first (frames in blocks, as against ONNX Runtime).</param>
    public static BenchReport Run(string imagePath, int threads, int frames, string? imagesDir, Network? floatNetwork, int framesInFlight = 1, bool fromFile = false,
        long? ramBudgetBytes = null, long? baselineRamBudgetBytes = null)
    {
        if (threads < 1 || frames < 1 || framesInFlight < 1) throw new UsageException("--threads, --frames and --frames-in-flight must be at least 1");
        if (baselineRamBudgetBytes != null && (floatNetwork != null || framesInFlight > 1))
            throw new UsageException("--vs-ram-budget compares two plans of the runtime one frame at a time: leave out --vs-ort and --frames-in-flight");
        byte[]? bytes = fromFile ? null : RuntimeClassifier.ReadImage(imagePath);
        RuntimeClassifier Open(long? budget) => bytes == null ? new RuntimeClassifier(imagePath, threads, budget)
            : RuntimeClassifier.FromBytes(Path.GetFileName(imagePath) + " (runtime)", bytes, threads, budget);
        using var runtime = Open(ramBudgetBytes);
        var inputs = imagesDir != null
            ? Dataset.Load(imagesDir, Split.Evaluation, frames).Select(i => CaffePreprocessing.Run(RgbImage.Load(i.Path))).ToArray()
            : Enumerable.Range(0, frames).Select(i => new float[runtime.Current.Image.Model.InputSize]).ToArray();
        Action<float[]> runRuntime = x => runtime.IntegerLogits(x);
        long ram = runtime.Current.Engine.RamBytes;
        if (baselineRamBudgetBytes != null)
        {
            using var baseline = Open(baselineRamBudgetBytes);
            var (rt, b) = TimeInBlocks(inputs, runRuntime, x => baseline.IntegerLogits(x));
            return new BenchReport(Path.GetFileName(imagePath), threads, inputs.Length, runtime.Current.Engine.ConvKernel, rt.MedianMs, rt.Fps, null, null, null)
            {
                RuntimeRamBytes = ram, RamBudgetBytes = ramBudgetBytes, BaselineRamBudgetBytes = baselineRamBudgetBytes,
                BaselineRamBytes = baseline.Current.Engine.RamBytes, BaselineMs = b.MedianMs, BaselineRatio = rt.MedianMs / b.MedianMs,
            };
        }
        if (floatNetwork == null || framesInFlight > 1)
        {
            var (rtMs, rtFps) = Time(inputs, framesInFlight, runRuntime);
            double? ortMs = null, ortFps = null;
            if (floatNetwork != null)
                WithOrt(floatNetwork, threads, ort => (ortMs, ortFps) = Time(inputs, 1, x => ort.Logits(x))); // ORT parallelises inside a frame
            return new BenchReport(Path.GetFileName(imagePath), threads, inputs.Length, runtime.Current.Engine.ConvKernel, rtMs, rtFps, ortMs, ortFps,
                ortMs is double o ? rtMs / o : null) { FramesInFlight = framesInFlight, RuntimeRamBytes = ram, RamBudgetBytes = ramBudgetBytes };
        }
        BenchReport? report = null;
        WithOrt(floatNetwork, threads, ort =>
        {
            var (rt, ortTimes) = TimeInBlocks(inputs, runRuntime, x => ort.Logits(x));
            report = new BenchReport(Path.GetFileName(imagePath), threads, inputs.Length, runtime.Current.Engine.ConvKernel, rt.MedianMs, rt.Fps, ortTimes.MedianMs, ortTimes.Fps,
                rt.MedianMs / ortTimes.MedianMs) { RuntimeRamBytes = ram, RamBudgetBytes = ramBudgetBytes };
        });
        return report!;
    }

    static void WithOrt(Network floatNetwork, int threads, Action<OrtRunner> use)
    {
        string onnx = Path.Combine(Path.GetTempPath(), $"edgeresnet-bench-{Environment.ProcessId}.onnx");
        try
        {
            OnnxExporter.Save(floatNetwork, onnx);
            using var ort = new OrtRunner(onnx, threads);
            use(ort);
        }
        finally { File.Delete(onnx); }
    }

    public sealed record Timing(double[] Times, double MedianMs, double Fps);

    /// <summary>Frames per block of <see cref="TimeInBlocks"/>.</summary>
    const int BlockFrames = 5;

    /// <summary>
    /// Two runners in turn, block by block (a x5, b x5, b x5, a x5 ...: which goes first alternates, as the one timed second
    /// in a pair ran a few per cent faster on this project's host), each block after one untimed warm-up frame: on a host
    /// whose speed drifts both see the same drift, and each block runs warm (its caches, its threads awake), as a
    /// runner timed alone would.
    /// </summary>
    public static (Timing A, Timing B) TimeInBlocks(float[][] inputs, Action<float[]> a, Action<float[]> b)
    {
        double[] ta = new double[inputs.Length], tb = new double[inputs.Length];
        for (int i0 = 0, pair = 0; i0 < inputs.Length; i0 += BlockFrames, pair++)
        {
            int i1 = Math.Min(inputs.Length, i0 + BlockFrames);
            if (pair % 2 == 0) { TimeBlock(inputs, i0, i1, a, ta); TimeBlock(inputs, i0, i1, b, tb); }
            else { TimeBlock(inputs, i0, i1, b, tb); TimeBlock(inputs, i0, i1, a, ta); }
        }
        return (new Timing(ta, Median(ta), 1000.0 * ta.Length / ta.Sum()), new Timing(tb, Median(tb), 1000.0 * tb.Length / tb.Sum()));
    }

    static void TimeBlock(float[][] inputs, int i0, int i1, Action<float[]> run, double[] times)
    {
        run(inputs[i0]); // warm-up
        for (int i = i0; i < i1; i++)
        {
            var sw = Stopwatch.StartNew();
            run(inputs[i]);
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
    }

    /// <summary>The middle value (the upper of the two middle ones for an even count), as every timing figure here reports it.</summary>
    internal static double Median(double[] values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>Median per-frame latency and overall frames/s, with <paramref name="parallel"/> frames in flight (after one warm-up frame each).</summary>
    public static (double MedianMs, double Fps) Time(float[][] inputs, int parallel, Action<float[]> run)
    {
        Parallel.For(0, parallel, new ParallelOptions { MaxDegreeOfParallelism = parallel }, i => run(inputs[i % inputs.Length])); // warm-up
        var times = new double[inputs.Length];
        var wall = Stopwatch.StartNew();
        Parallel.For(0, inputs.Length, new ParallelOptions { MaxDegreeOfParallelism = parallel }, i =>
        {
            var sw = Stopwatch.StartNew();
            run(inputs[i]);
            times[i] = sw.Elapsed.TotalMilliseconds;
        });
        wall.Stop();
        return (Median(times), inputs.Length / wall.Elapsed.TotalSeconds);
    }
}
