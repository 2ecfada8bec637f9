using System.Diagnostics;
using EdgeResNet.Common;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Reports;

/// <summary>One layer's share of a frame: median time per frame, throughput, and flash bytes it read.</summary>
public sealed record LayerTiming(int Index, string Name, string Op, long Macs, double Ms, double GMacPerSecond, long FlashBytes, double Share);

public sealed record ProfileReport(string Model, string Kernel, int Frames, double FrameMs, double GMacPerSecond, long FlashBytesPerFrame, IReadOnlyList<LayerTiming> Layers)
{
    public int Threads { get; init; } = 1;
}

/// <summary>
/// A per-layer profile of the runtime engine (TFLM's MicroProfiler, for this runtime): the engine calls
/// back after each piece of a layer (<see cref="InferenceEngine.RunProfiled"/>), and the time and flash
/// bytes since the previous call are that layer's. One engine of T threads (the callbacks come from the
/// caller's thread, after each job of the frame), the weights streamed from the image held in RAM as
/// <c>bench</c> does, each layer's median over the frames after three warm-up frames, and the frame's median (on a
/// shared host one stalled frame would move a mean by its whole stall); the callbacks cost a timestamp each (a
/// few thousand per frame). A bottleneck's expansion conv and its residual add run interleaved, group by
/// group, so the conv's time includes the add's.
/// </summary>
public static class LayerProfile
{
    /// <param name="ramBudgetBytes">The plan's RAM budget (null: the default for the threads).</param>
    public static ProfileReport Run(string imagePath, int frames, string? imagesDir, int threads = 1, long? ramBudgetBytes = null)
    {
        if (frames < 1 || threads < 1) throw new UsageException("--frames and --threads must be at least 1");
        var counting = CountingFlash.Of(new MemoryFlash(RuntimeClassifier.ReadImage(imagePath)));
        var image = FlashImage.Open(counting, verifySections: true);
        var model = image.Model;
        using var engine = new InferenceEngine(image, RuntimeClassifier.PlanFor(model, ramBudgetBytes, threads));
        var photos = imagesDir != null ? Dataset.Load(imagesDir, Split.Evaluation, frames) : [];
        var inputs = Enumerable.Range(0, frames).Select(i => i < photos.Count
            ? Quantizer.QuantizeInput(CaffePreprocessing.Run(RgbImage.Load(photos[i].Path)), model)
            : new short[model.InputSize]).ToArray();
        for (int i = 0; i < 3; i++) engine.Run(inputs[0]); // warm-up: JIT tiers, first touch

        int n = model.Layers.Length;
        var ticks = new long[frames * n]; // frame f's layer i at f * n + i
        var flash = new long[n];
        var frameTicks = new long[frames];
        long lastTick = 0, lastBytes = 0;
        int frame = 0;
        Action<int> afterLayer = layer =>
        {
            long now = Stopwatch.GetTimestamp(), bytes = counting.BytesRead;
            ticks[frame * n + layer] += now - lastTick;
            flash[layer] += bytes - lastBytes;
            lastTick = now;
            lastBytes = bytes;
        };
        for (frame = 0; frame < frames; frame++)
        {
            lastTick = Stopwatch.GetTimestamp();
            lastBytes = counting.BytesRead;
            long start = lastTick;
            engine.RunProfiled(inputs[frame], afterLayer);
            frameTicks[frame] = Stopwatch.GetTimestamp() - start;
        }
        double Median(IEnumerable<long> t) => Benchmark.Median(t.Select(v => v * 1000.0 / Stopwatch.Frequency).ToArray());
        double frameMs = Median(frameTicks);
        var medians = Enumerable.Range(0, n).Select(i => Median(Enumerable.Range(0, frames).Select(f => ticks[f * n + i]))).ToArray();
        double sum = Math.Max(medians.Sum(), 1e-9); // a share is of the layers' medians, which add up to about the median frame
        var layers = model.Layers.Select((l, i) => new LayerTiming(i, l.Name, l.Op + (l.Relu ? "+ReLU" : ""), l.Macs, medians[i],
            l.Macs / Math.Max(medians[i], 1e-9) / 1e6, flash[i] / frames, medians[i] / sum)).ToList();
        return new ProfileReport(Path.GetFileName(imagePath), engine.ConvKernel, frames, frameMs, model.Macs / frameMs / 1e6, flash.Sum() / frames, layers) { Threads = threads };
    }

    /// <summary>The kind of a layer for the summary: the stem, 3x3 and 1x1 convs (projections with the 1x1), fc, or the operator.</summary>
    public static string Kind(LayerTiming l) =>
        l.Index == 0 ? "stem 7x7 conv" : l.Op.StartsWith("Conv") && l.Name.Contains("fc") ? "fc1000"
        : l.Op.StartsWith("Conv") ? (l.Name.EndsWith("_branch2b") ? "3x3 convs" : "1x1 convs (projections included; expansions with their add)") : l.Op;

    /// <summary>The profile as Markdown: the summary by kind of layer, then every layer.</summary>
    public static string Markdown(ProfileReport r, string command)
    {
        var md = new System.Text.StringBuilder();
        md.AppendLine($"# Per-layer profile: {r.Model}").AppendLine();
        md.AppendLine($"`{command}`: {r.FrameMs:F1} ms per frame (median of {r.Frames}, {r.Threads} thread(s), {r.Kernel}), {r.GMacPerSecond:F1} G MAC/s, {r.FlashBytesPerFrame:N0} flash bytes per frame.").AppendLine();
        md.AppendLine("| layers | count | ms per frame | share | G MAC/s |").AppendLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var g in r.Layers.GroupBy(Kind))
        {
            double ms = g.Sum(l => l.Ms);
            long macs = g.Sum(l => l.Macs);
            md.AppendLine($"| {g.Key} | {g.Count()} | {ms:F2} | {ms / r.FrameMs:P1} | {(macs > 0 ? (macs / ms / 1e6).ToString("F1") : "")} |");
        }
        md.AppendLine().AppendLine("| # | layer | op | MACs | ms | G MAC/s | flash bytes | share |").AppendLine("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var l in r.Layers)
            md.AppendLine($"| {l.Index} | {l.Name} | {l.Op} | {(l.Macs > 0 ? l.Macs.ToString("N0") : "")} | {l.Ms:F2} | {(l.Macs > 0 ? l.GMacPerSecond.ToString("F1") : "")} | {(l.FlashBytes > 0 ? l.FlashBytes.ToString("N0") : "")} | {l.Share:P1} |");
        return md.ToString();
    }
}
