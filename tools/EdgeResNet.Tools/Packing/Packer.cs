using EdgeResNet.Common;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Packing;

/// <summary>What <see cref="Packer.Pack"/> wrote, and how often the packed image's top-1 agrees with float's on the calibration inputs.</summary>
public sealed record PackResult(string Path, long ImageBytes, uint ImageCrc, QModel Model, double Seconds, double AgreementTop1, int CheckedInputs, WidthChoice? Widths = null)
{
    public IReadOnlyList<QLayer> Convs => Model.Layers.Where(l => l.Op == QOp.Conv).ToList();

    /// <summary>Throws <see cref="BelowTargetException"/> (exit 4) when the agreement is below <paramref name="minAgreement"/>: the model has collapsed.</summary>
    public void CheckAgreement(double minAgreement)
    {
        if (AgreementTop1 < minAgreement)
            throw new BelowTargetException($"THE PACKED MODEL HAS COLLAPSED: it agrees with float on only {AgreementTop1:P1} of the {CheckedInputs} calibration photos " +
                $"(minimum {minAgreement:P0}, --min-agreement). Do not flash it; {Path} is written only for study. More weight or activation bits will help (--bits, --act-bits)");
    }
}

/// <summary>
/// The pack pipeline: calibrate the float network on the calibration photos, quantise, run the packed
/// image on the runtime engine over the same photos to measure its agreement with float, write it atomically.
/// </summary>
public static class Packer
{
    /// <summary>The agreement with float below which pack calls a model collapsed (the 10-bit image agrees on about 99 % of photos, 6-bit weights on 74 to 88 %).</summary>
    public const double DefaultMinAgreement = 0.8;

    /// <summary>Photos of the calibration split the flash-budget search probes each layer on.</summary>
    public const int DefaultProbeImages = 10;

    /// <param name="flashBudget">When given, the weight width of every conv layer is chosen (<see cref="MixedPrecision"/>) so the image fits in this many bytes.</param>
    public static PackResult Pack(Network net, IReadOnlyList<LabeledImage> calibration, QuantOptions options, string path, int threads,
        Action<int>? calibrationProgress = null, Action<int>? checkProgress = null, long? flashBudget = null, Action<string, int, int>? searchProgress = null)
    {
        if (calibration.Count == 0) throw new UsageException("no calibration images (class_index % 10 == 0) in the calibration folder");
        var inputs = new float[calibration.Count][]; // decoded once, for the calibration, the search and the check
        return Pack(net, calibration.Count, i => inputs[i] ??= CaffePreprocessing.Run(RgbImage.Load(calibration[i].Path)), options, path, threads,
            calibrationProgress, checkProgress, flashBudget, searchProgress);
    }

    /// <summary><see cref="Pack"/> on <paramref name="count"/> float input tensors made by <paramref name="inputOf"/>.</summary>
    public static PackResult Pack(Network net, int count, Func<int, float[]> inputOf, QuantOptions options, string path, int threads,
        Action<int>? calibrationProgress = null, Action<int>? checkProgress = null, long? flashBudget = null, Action<string, int, int>? searchProgress = null)
    {
        options.Validate();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cal = Calibration.Run(new FloatReference(net), count, inputOf, threads, calibrationProgress);
        WidthChoice? widths = null;
        if (flashBudget is long budget)
        {
            var sensitivity = MixedPrecision.Measure(net, cal, options, Math.Min(DefaultProbeImages, count), inputOf, threads, searchProgress);
            widths = MixedPrecision.Choose(sensitivity, budget);
            options = options with { LayerBits = widths.Widths };
        }
        var model = Quantizer.Quantize(net, cal, options);
        var packed = FlashImageWriter.Pack(model);
        double agreement = Agreement(packed.Bytes, count, inputOf, cal.FloatTop1, threads, checkProgress);
        AtomicFile.WriteAllBytes(path, packed.Bytes);
        return new PackResult(path, packed.Bytes.Length, packed.ImageCrc, model, clock.Elapsed.TotalSeconds, agreement, count, widths);
    }

    /// <summary>Fraction of the inputs on which the image, run by the runtime engine as the board runs it, has float's top-1 class.</summary>
    static double Agreement(byte[] image, int count, Func<int, float[]> inputOf, int[] floatTop1, int threads, Action<int>? progress)
    {
        int agree = 0, done = 0;
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads },
            () => new InferenceEngine(FlashImage.Open(new MemoryFlash(image), verifySections: false)), (i, _, engine) =>
            {
                var logits = engine.Run(Quantizer.QuantizeInput(inputOf(i), engine.Plan.Model));
                if (Evaluator.TopK(logits, 1)[0] == floatTop1[i]) Interlocked.Increment(ref agree);
                progress?.Invoke(Interlocked.Increment(ref done));
                return engine;
            }, _ => { });
        return (double)agree / count;
    }

    /// <summary>
    /// <see cref="Pack"/>, skipped when <paramref name="path"/> already holds a valid image packed with the
    /// same options, calibration photos and code (a stamp beside it records them). Returns null when it was up to date.
    /// </summary>
    /// <exception cref="BelowTargetException">The packed model collapsed (<see cref="PackResult.CheckAgreement"/>); no stamp is written, so the next run packs again.</exception>
    public static PackResult? PackIfStale(Func<Network> net, IReadOnlyList<LabeledImage> calibration, QuantOptions options, string path, int threads,
        Action<int>? calibrationProgress = null, Action<int>? checkProgress = null)
    {
        string key = StampKey(calibration, options), stamp = path + ".stamp";
        if (File.Exists(path) && File.Exists(stamp))
        {
            try
            {
                using var flash = new FileFlash(path);
                // The stamp names the image it was written for by its CRC: an image packed over it by other means is stale.
                if (File.ReadAllText(stamp) == Stamp(key, FlashImage.Open(flash, verifySections: true).ImageCrc)) return null;
            }
            catch (FlashImageException) { } // damaged: pack again
        }
        var result = Pack(net(), calibration, options, path, threads, calibrationProgress, checkProgress);
        result.CheckAgreement(DefaultMinAgreement);
        AtomicFile.WriteAllText(stamp, Stamp(key, result.ImageCrc));
        return result;
    }

    static string Stamp(string key, uint imageCrc) => key + $"image crc {imageCrc:x8}\n";

    /// <summary>What an image depends on: the options, each calibration photo (name and size), and the code of the tools and the runtime (module version ids change with every code change).</summary>
    static string StampKey(IReadOnlyList<LabeledImage> calibration, QuantOptions options) =>
        string.Join("\n", [
            options.ToString(),
            typeof(Packer).Assembly.ManifestModule.ModuleVersionId.ToString(),
            typeof(FlashImage).Assembly.ManifestModule.ModuleVersionId.ToString(),
            .. calibration.Select(c => $"{c.FileName}\t{(File.Exists(c.Path) ? new FileInfo(c.Path).Length : -1)}"),
        ]) + "\n";

    /// <summary>Activation ranges of the float network on the calibration photos (pack and the sweep both start here).</summary>
    public static Calibration Calibrate(Network net, IReadOnlyList<LabeledImage> calibration, int threads, Action<int>? progress = null)
    {
        if (calibration.Count == 0) throw new UsageException("no calibration images (class_index % 10 == 0) in the calibration folder");
        return Calibration.Run(new FloatReference(net), calibration, threads, progress);
    }
}
