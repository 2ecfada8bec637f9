using System.Diagnostics;
using EdgeResNet.Common;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Reports;

/// <summary>One layer's share of a frame: mean time per frame, throughput, and flash bytes it read.</summary>
public sealed record LayerTiming(int Index, string Name, string Op, long Macs, double Ms, double GMacPerSecond, long FlashBytes, double Share);

public sealed record ProfileReport(string Model, string Kernel, int Frames, double FrameMs, double GMacPerSecond, long FlashBytesPerFrame, IReadOnlyList<LayerTiming> Layers);

/// <summary>
/// A per-layer profile of the runtime engine (TFLM's MicroProfiler, for this runtime): the engine calls
/// back after each piece of a layer (<see cref="InferenceEngine.RunProfiled"/>), and the time and flash
/// bytes since the previous call are that layer's. One engine, one thread, the mean of the frames after a
/// warm-up frame; the callbacks cost a timestamp each (a few thousand per frame).
/// </summary>
public static class LayerProfile
{
    public static ProfileReport Run(string imagePath, int frames, string? imagesDir)
    {
        if (frames < 1) throw new UsageException("--frames must be at least 1");
        using var file = new FileFlash(imagePath);
        var counting = new CountingFlash(file);
        var image = FlashImage.Open(counting, verifySections: true);
        var model = image.Model;
        var engine = new InferenceEngine(image);
        var photos = imagesDir != null ? Dataset.Load(imagesDir, Split.Evaluation, frames) : [];
        var inputs = Enumerable.Range(0, frames).Select(i => i < photos.Count
            ? Quantizer.QuantizeInput(CaffePreprocessing.Run(RgbImage.Load(photos[i].Path)), model)
            : new short[model.InputSize]).ToArray();
        engine.Run(inputs[0]); // warm-up (JIT)

        var ticks = new long[model.Layers.Length];
        var flash = new long[model.Layers.Length];
        long lastTick = 0, lastBytes = 0;
        Action<int> afterLayer = layer =>
        {
            long now = Stopwatch.GetTimestamp(), bytes = counting.BytesRead;
            ticks[layer] += now - lastTick;
            flash[layer] += bytes - lastBytes;
            lastTick = now;
            lastBytes = bytes;
        };
        long total = 0;
        foreach (var input in inputs)
        {
            input.CopyTo(engine.Input);
            lastTick = Stopwatch.GetTimestamp();
            lastBytes = counting.BytesRead;
            long start = lastTick;
            engine.RunProfiled(afterLayer);
            total += Stopwatch.GetTimestamp() - start;
        }
        double Ms(long t) => t * 1000.0 / Stopwatch.Frequency / frames;
        double frameMs = Ms(total);
        var layers = model.Layers.Select((l, i) => new LayerTiming(i, l.Name, l.Op + (l.Relu ? "+ReLU" : ""), l.Macs, Ms(ticks[i]),
            l.Macs / Math.Max(Ms(ticks[i]), 1e-9) / 1e6, flash[i] / frames, Ms(ticks[i]) / frameMs)).ToList();
        return new ProfileReport(Path.GetFileName(imagePath), engine.ConvKernel, frames, frameMs, model.Macs / frameMs / 1e6, flash.Sum() / frames, layers);
    }
}
