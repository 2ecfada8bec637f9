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
}

/// <summary>
/// Latency of the runtime on sample frames, and in the same run of ONNX Runtime fp32 on the
/// exported float model: the runtime runs each frame on <c>threads</c> threads, ONNX Runtime
/// gets <c>threads</c> intra-op threads. With <c>framesInFlight</c> &gt; 1 the runtime runs that many
/// engines on different frames at once (throughput; ONNX Runtime still runs one frame at a time).
/// With one frame in flight the two run frame by frame in turn (<see cref="TimeInTurn"/>), and the ratio is the median
/// of the per-frame ratios.
/// </summary>
public static class Benchmark
{
    /// <param name="imagesDir">Sample photos (the evaluation split); null: all-zero input frames.</param>
    /// <param name="floatNetwork">The float network for the ONNX Runtime comparison; null: runtime only.</param>
    public static BenchReport Run(string imagePath, int threads, int frames, string? imagesDir, Network? floatNetwork, int framesInFlight = 1)
    {
        if (threads < 1 || frames < 1 || framesInFlight < 1) throw new UsageException("--threads, --frames and --frames-in-flight must be at least 1");
        using var runtime = new RuntimeClassifier(imagePath, threads);
        var inputs = imagesDir != null
            ? Dataset.Load(imagesDir, Split.Evaluation, frames).Select(i => CaffePreprocessing.Run(RgbImage.Load(i.Path))).ToArray()
            : Enumerable.Range(0, frames).Select(i => new float[runtime.Current.Image.Model.InputSize]).ToArray();
        Action<float[]> runRuntime = x => runtime.IntegerLogits(x);
        if (floatNetwork == null || framesInFlight > 1)
        {
            var (rtMs, rtFps) = Time(inputs, framesInFlight, runRuntime);
            double? ortMs = null, ortFps = null;
            if (floatNetwork != null)
                WithOrt(floatNetwork, threads, ort => (ortMs, ortFps) = Time(inputs, 1, x => ort.Logits(x))); // ORT parallelises inside a frame
            return new BenchReport(Path.GetFileName(imagePath), threads, inputs.Length, runtime.Current.Engine.ConvKernel, rtMs, rtFps, ortMs, ortFps,
                ortMs is double o ? rtMs / o : null) { FramesInFlight = framesInFlight };
        }
        BenchReport? report = null;
        WithOrt(floatNetwork, threads, ort =>
        {
            var (rt, ortTimes) = TimeInTurn(inputs, runRuntime, x => ort.Logits(x));
            report = new BenchReport(Path.GetFileName(imagePath), threads, inputs.Length, runtime.Current.Engine.ConvKernel, rt.MedianMs, rt.Fps, ortTimes.MedianMs, ortTimes.Fps,
                Median(rt.Times.Zip(ortTimes.Times, (a, b) => a / b).ToArray()));
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

    const int SettleMs = 30;

    public sealed record Timing(double[] Times, double MedianMs, double Fps);

    /// <summary>
    /// Two runners frame by frame in turn (a, b, a, b ...), after one warm-up frame each: on a host whose speed drifts,
    /// both see the same drift, and the ratio is the median of the frame-by-frame ratios. Each frame starts after a pause
    /// of <see cref="SettleMs"/>, so the threads the other runner leaves spinning (ONNX Runtime's intra-op pool, the
    /// engine's crew) have gone to sleep and do not take its cores.
    /// </summary>
    public static (Timing A, Timing B) TimeInTurn(float[][] inputs, Action<float[]> a, Action<float[]> b)
    {
        a(inputs[0]);
        b(inputs[0]);
        double[] ta = new double[inputs.Length], tb = new double[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            Thread.Sleep(SettleMs);
            var sw = Stopwatch.StartNew();
            a(inputs[i]);
            ta[i] = sw.Elapsed.TotalMilliseconds;
            Thread.Sleep(SettleMs);
            sw.Restart();
            b(inputs[i]);
            tb[i] = sw.Elapsed.TotalMilliseconds;
        }
        return (new Timing(ta, Median(ta), 1000.0 * ta.Length / ta.Sum()), new Timing(tb, Median(tb), 1000.0 * tb.Length / tb.Sum()));
    }

    static double Median(double[] values)
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
        Array.Sort(times);
        return (times[times.Length / 2], inputs.Length / wall.Elapsed.TotalSeconds);
    }
}
