using EdgeResNet.Common;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Packing;

/// <summary>What <see cref="Packer.Pack"/> wrote.</summary>
public sealed record PackResult(string Path, long ImageBytes, uint ImageCrc, QModel Model, double Seconds)
{
    public IReadOnlyList<QLayer> Convs => Model.Layers.Where(l => l.Op == QOp.Conv).ToList();
}

/// <summary>The pack pipeline: calibrate the float network on the calibration photos, quantise, write the flash image atomically.</summary>
public static class Packer
{
    public static PackResult Pack(Network net, IReadOnlyList<LabeledImage> calibration, QuantOptions options, string path, int threads, Action<int>? calibrationProgress = null)
    {
        options.Validate();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cal = Calibrate(net, calibration, threads, calibrationProgress);
        var model = Quantizer.Quantize(net, cal, options);
        var packed = FlashImageWriter.Pack(model);
        AtomicFile.WriteAllBytes(path, packed.Bytes);
        return new PackResult(path, packed.Bytes.Length, packed.ImageCrc, model, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// <see cref="Pack"/>, skipped when <paramref name="path"/> already holds a valid image packed with the
    /// same options, calibration photos and code (a stamp beside it records them). Returns null when it was up to date.
    /// </summary>
    public static PackResult? PackIfStale(Func<Network> net, IReadOnlyList<LabeledImage> calibration, QuantOptions options, string path, int threads,
        Action<int>? calibrationProgress = null)
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
        var result = Pack(net(), calibration, options, path, threads, calibrationProgress);
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
