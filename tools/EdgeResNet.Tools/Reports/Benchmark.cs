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
        var (rtMs, rtFps) = Time(inputs, framesInFlight, x => runtime.IntegerLogits(x));
        double? ortMs = null, ortFps = null;
        if (floatNetwork != null)
        {
            string onnx = Path.Combine(Path.GetTempPath(), $"edgeresnet-bench-{Environment.ProcessId}.onnx");
            try
            {
                OnnxExporter.Save(floatNetwork, onnx);
                using var ort = new OrtRunner(onnx, threads);
                (double ms, double fps) = Time(inputs, 1, x => ort.Logits(x)); // ORT parallelises inside a frame
                (ortMs, ortFps) = (ms, fps);
            }
            finally { File.Delete(onnx); }
        }
        return new BenchReport(Path.GetFileName(imagePath), threads, inputs.Length, runtime.Current.Engine.ConvKernel, rtMs, rtFps, ortMs, ortFps,
            ortMs is double o ? rtMs / o : null) { FramesInFlight = framesInFlight };
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
