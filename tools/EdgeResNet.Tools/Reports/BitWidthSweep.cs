using System.Globalization;
using System.Text;
using EdgeResNet.Runtime;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Reports;

public sealed record SweepRow(BnScheme Scheme, int WeightBits, int ActivationBits, double Top1, double Top5, double AgreementTop1, long ImageBytes, int MaxAccumulatorBits, double Seconds);

public sealed record SweepResult(int Images, int CalibrationImages, double FloatTop1, double FloatTop5, IReadOnlyList<SweepRow> Rows, WeightFormat WeightFormat = WeightFormat.Mse)
{
    /// <summary>Which engine ran the quantised images.</summary>
    public string? Engine { get; init; }
}

/// <summary>
/// Accuracy against weight bit width for both BN schemes: one calibration, then per setting
/// quantise, lay out the flash image and run it on the runtime engine on every image (bit-exact with
/// the integer simulator, which the tests prove, and far faster).
/// </summary>
public static class BitWidthSweep
{
    /// <param name="progress">Called with a stage label (preprocessing, the float reference, each setting), images done and images in all.</param>
    public static SweepResult Run(Network net, Calibration cal, IReadOnlyList<LabeledImage> images,
        IReadOnlyList<BnScheme> schemes, IReadOnlyList<int> bits, int activationBits, int threads, Action<string, int, int>? progress = null, WeightFormat format = WeightFormat.Mse)
    {
        // Every photo is decoded and preprocessed once, for the float reference and every setting.
        var inputs = new float[images.Count][];
        string load = $"decode + preprocess {images.Count} images";
        int loaded = 0;
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            inputs[i] = CaffePreprocessing.Run(RgbImage.Load(images[i].Path));
            progress?.Invoke(load, Interlocked.Increment(ref loaded), images.Count);
        });
        var index = images.Select((img, i) => (img, i)).ToDictionary(p => p.img.FileName, p => p.i);
        var reference = new FloatReference(net);
        var floatReport = Evaluator.Run("float", images, input => Evaluator.TopK(reference.Forward(input), 5), threads,
            done => progress?.Invoke("float32 reference", done, images.Count), image => inputs[index[image.FileName]]);
        var floatTop1 = floatReport.Predictions.ToDictionary(p => p.File, p => p.Top5[0]);
        var rows = new List<SweepRow>();
        string? engine = null;
        foreach (var scheme in schemes)
            foreach (var b in bits)
            {
                var model = Quantizer.Quantize(net, cal, new QuantOptions(b, activationBits, scheme, WeightFormat: format));
                var image = FlashImageWriter.ToBytes(model);
                long bytes = image.LongLength;
                using var classifier = RuntimeClassifier.FromBytes($"{scheme} w{b} a{activationBits}", image);
                string label = classifier.Name;
                engine ??= classifier.Engine;
                var report = Evaluator.Run(label, images, input => Evaluator.TopK(classifier.IntegerLogits(input), 5), threads,
                    done => progress?.Invoke(label, done, images.Count), image => inputs[index[image.FileName]]).WithAgreement(floatTop1);
                rows.Add(new SweepRow(scheme, b, activationBits, report.Top1, report.Top5, report.AgreementTop1!.Value, bytes,
                    model.Layers.Where(l => l.Op == QOp.Conv).Max(l => l.AccumulatorBits), report.Seconds));
            }
        return new SweepResult(images.Count, cal.Images, floatReport.Top1, floatReport.Top5, rows, format) { Engine = engine };
    }

    public static string Markdown(SweepResult r, string command)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Images: {r.Images} (evaluation split), calibration: {r.CalibrationImages} images. Float32 reference on the same images: top-1 {Pct(r.FloatTop1)}, top-5 {Pct(r.FloatTop5)}. Weight formats: {(r.WeightFormat == WeightFormat.Mse ? "least squared error per layer (may clip outliers)" : "largest |w| per layer (no clipping)")}.");
        sb.AppendLine();
        sb.AppendLine($"Command: `{command}`" + (r.Engine != null ? $"; engine: {r.Engine}" : ""));
        sb.AppendLine();
        sb.AppendLine("| scheme | weight bits | act bits | top-1 | Δ top-1 vs float | top-5 | top-1 agreement with float | flash image bytes | max accumulator bits |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in r.Rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Scheme.ToString().ToLowerInvariant()} | {row.WeightBits} | {row.ActivationBits} | {Pct(row.Top1)} | {(row.Top1 - r.FloatTop1) * 100:+0.00;-0.00;0.00} | {Pct(row.Top5)} | {Pct(row.AgreementTop1)} | {row.ImageBytes:N0} | {row.MaxAccumulatorBits} |"));
        return sb.ToString();
    }

    static string Pct(double v) => (v * 100).ToString("F2", CultureInfo.InvariantCulture) + " %";

    public static void Plot(SweepResult r, string pngPath)
    {
        var plot = new ScottPlot.Plot();
        foreach (var group in r.Rows.GroupBy(x => x.Scheme))
        {
            var s = plot.Add.Scatter(group.Select(x => (double)x.WeightBits).ToArray(), group.Select(x => x.Top1 * 100).ToArray());
            s.LegendText = $"{group.Key.ToString().ToLowerInvariant()} BN";
            s.MarkerSize = 7;
        }
        var f = plot.Add.HorizontalLine(r.FloatTop1 * 100);
        f.LegendText = "float32";
        f.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Title($"ResNet-50 top-1 vs conv weight bits ({r.Images} images, 16-bit activations)");
        plot.XLabel("weight bits");
        plot.YLabel("top-1 accuracy (%)");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        AtomicFile.WriteAllBytes(pngPath, plot.GetImageBytes(900, 560, ScottPlot.ImageFormat.Png));
    }
}
