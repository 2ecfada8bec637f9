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

/// <param name="Method">per-layer (one power-of-two step per layer), per-channel, per-channel+bc (with bias correction), or mixed (per-channel+bc with widths chosen for <paramref name="FlashBudget"/>).</param>
/// <param name="Widths">Per-layer widths when they differ ("conv1=8,..."), else null.</param>
public sealed record SweepRow(BnScheme Scheme, int WeightBits, int ActivationBits, double Top1, double Top5, double AgreementTop1, long ImageBytes, int MaxAccumulatorBits, double Seconds,
    string Method = "per-layer", long? FlashBudget = null, double MeanWeightBits = 0, string? Widths = null);

public sealed record SweepResult(int Images, int CalibrationImages, double FloatTop1, double FloatTop5, IReadOnlyList<SweepRow> Rows, WeightFormat WeightFormat = WeightFormat.Mse)
{
    /// <summary>Which engine ran the quantised images.</summary>
    public string? Engine { get; init; }
    /// <summary>Wall time of each flash-budget width search (sensitivity measurement included), by method and scheme.</summary>
    public IReadOnlyDictionary<string, double>? SearchSeconds { get; init; }
}

/// <summary>One setting of the study: a named method and its options, optionally with a flash budget its widths are chosen for.</summary>
public sealed record SweepSetting(string Method, QuantOptions Options, long? FlashBudget = null);

/// <summary>
/// Accuracy against weight bit width (or flash budget) for both BN schemes: one calibration, then per setting
/// quantise, lay out the flash image and run it on the runtime engine on every image (bit-exact with
/// the integer simulator, which the tests prove, and far faster).
/// </summary>
public static class BitWidthSweep
{
    /// <summary>The methods a study can compare, each as options on top of a scheme and a width.</summary>
    public static readonly string[] Methods = ["per-layer", "per-channel", "per-channel+bc", "mixed"];

    public static QuantOptions OptionsOf(string method, BnScheme scheme, int bits, int activationBits, WeightFormat format) => method switch
    {
        "per-layer" => new QuantOptions(bits, activationBits, scheme, WeightFormat: format),
        "per-layer+bc" => new QuantOptions(bits, activationBits, scheme, WeightFormat: format, BiasCorrection: true),
        "per-channel" => new QuantOptions(bits, activationBits, scheme, WeightFormat: format, Scales: WeightScales.PerChannel),
        "per-channel+bc" or "mixed" => new QuantOptions(bits, activationBits, scheme, WeightFormat: format, Scales: WeightScales.PerChannel, BiasCorrection: true),
        _ => throw new EdgeResNet.Common.UsageException($"unknown method '{method}'; use {string.Join(", ", Methods)} or per-layer+bc"),
    };

    /// <summary>The settings of a budget study: per budget, each uniform method at the widest width that fits, and mixed at the budget itself.</summary>
    public static List<SweepSetting> BudgetSettings(QLayer[] geometry, IReadOnlyList<long> budgets, IReadOnlyList<BnScheme> schemes, IReadOnlyList<string> methods, int activationBits, WeightFormat format)
    {
        var settings = new List<SweepSetting>();
        foreach (var scheme in schemes)
            foreach (var budget in budgets)
                foreach (var method in methods)
                {
                    if (method == "mixed") { settings.Add(new SweepSetting(method, OptionsOf(method, scheme, 8, activationBits, format), budget)); continue; }
                    int bits = Enumerable.Range(2, 15).LastOrDefault(b => Packing.FlashImageWriter.ImageBytes(geometry, _ => b) <= budget);
                    if (bits > 0) settings.Add(new SweepSetting(method, OptionsOf(method, scheme, bits, activationBits, format), budget));
                }
        return settings;
    }

    /// <param name="progress">Called with a stage label (preprocessing, the float reference, each setting), images done and images in all.</param>
    public static SweepResult Run(Network net, Calibration cal, IReadOnlyList<LabeledImage> images, IReadOnlyList<SweepSetting> settings, int threads,
        Action<string, int, int>? progress = null, Func<int, float[]>? calibrationInput = null)
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
        var sensitivities = new Dictionary<QuantOptions, LayerSensitivity>();
        var searchSeconds = new Dictionary<string, double>();
        string? engine = null;
        foreach (var setting in settings)
        {
            var options = setting.Options;
            string label = $"{setting.Method} {options.Scheme} ".ToLowerInvariant();
            if (setting.Method == "mixed")
            {
                // The search sees the calibration photos only, as pack --flash-budget does.
                if (calibrationInput == null) throw new ArgumentException("a mixed setting needs the calibration photos", nameof(calibrationInput));
                var key = options with { WeightBits = 0 };
                if (!sensitivities.TryGetValue(key, out var sensitivity))
                {
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    sensitivities[key] = sensitivity = MixedPrecision.Measure(net, cal, options, Math.Min(Packer.DefaultProbeImages, cal.Images), calibrationInput, threads, progress);
                    searchSeconds[label.Trim()] = clock.Elapsed.TotalSeconds;
                }
                options = options with { LayerBits = MixedPrecision.Choose(sensitivity, setting.FlashBudget!.Value).Widths };
                label += $"{setting.FlashBudget / 1e6:0.#} MB";
            }
            else label += $"w{options.WeightBits}";
            var model = Quantizer.Quantize(net, cal, options);
            var image = FlashImageWriter.ToBytes(model);
            using var classifier = RuntimeClassifier.FromBytes(label, image);
            engine ??= classifier.Engine;
            var report = Evaluator.Run(label, images, input => Evaluator.TopK(classifier.IntegerLogits(input), 5), threads,
                done => progress?.Invoke(label, done, images.Count), image => inputs[index[image.FileName]]).WithAgreement(floatTop1);
            var convs = model.Layers.Where(l => l.Op == QOp.Conv).ToList();
            double meanBits = convs.Sum(l => (double)l.WeightBits * l.ReduceSize * l.OutC) / convs.Sum(l => (double)l.ReduceSize * l.OutC);
            rows.Add(new SweepRow(options.Scheme, options.WeightBits, options.ActivationBits, report.Top1, report.Top5, report.AgreementTop1!.Value, image.LongLength,
                convs.Max(l => l.AccumulatorBits), report.Seconds, setting.Method, setting.FlashBudget, meanBits, options.LayerBits?.ToString()));
        }
        return new SweepResult(images.Count, cal.Images, floatReport.Top1, floatReport.Top5, rows, settings.Count > 0 ? settings[0].Options.WeightFormat : WeightFormat.Mse)
        {
            Engine = engine, SearchSeconds = searchSeconds.Count > 0 ? searchSeconds : null,
        };
    }

    public static string Markdown(SweepResult r, string command)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Images: {r.Images} (evaluation split), calibration: {r.CalibrationImages} images. Float32 reference on the same images: top-1 {Pct(r.FloatTop1)}, top-5 {Pct(r.FloatTop5)}. Weight formats: {(r.WeightFormat == WeightFormat.Mse ? "least squared error per layer (may clip outliers)" : "largest |w| per layer (no clipping)")}.");
        sb.AppendLine();
        sb.AppendLine($"Command: `{command}`" + (r.Engine != null ? $"; engine: {r.Engine}" : ""));
        sb.AppendLine();
        bool methods = r.Rows.Any(x => x.Method != "per-layer" || x.FlashBudget != null);
        if (!methods)
        {
            sb.AppendLine("| scheme | weight bits | act bits | top-1 | Δ top-1 vs float | top-5 | top-1 agreement with float | flash image bytes | max accumulator bits |");
            sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var row in r.Rows)
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {row.Scheme.ToString().ToLowerInvariant()} | {row.WeightBits} | {row.ActivationBits} | {Pct(row.Top1)} | {(row.Top1 - r.FloatTop1) * 100:+0.00;-0.00;0.00} | {Pct(row.Top5)} | {Pct(row.AgreementTop1)} | {row.ImageBytes:N0} | {row.MaxAccumulatorBits} |"));
            return sb.ToString();
        }
        sb.AppendLine("Methods: per-layer = one power-of-two weight step per layer (today's default); per-channel = one real step per output channel, MSE-best clipping, absorbed by the BN multiplier; " +
            "+bc = bias correction (the expected rounding error on the calibration photos moved into the BN offset); mixed = per-channel+bc with each layer's width chosen for the budget on the calibration photos.");
        sb.AppendLine();
        sb.AppendLine("| flash budget | method | scheme | weight bits | top-1 | Δ top-1 vs float | top-5 | top-1 agreement with float | flash image bytes | max accumulator bits |");
        sb.AppendLine("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in r.Rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(row.FlashBudget is long b ? b.ToString("N0", CultureInfo.InvariantCulture) : "")} | {row.Method} | {row.Scheme.ToString().ToLowerInvariant()} | {(row.Widths != null ? $"mixed, mean {row.MeanWeightBits:F2}" : row.WeightBits.ToString(CultureInfo.InvariantCulture))} | {Pct(row.Top1)} | {(row.Top1 - r.FloatTop1) * 100:+0.00;-0.00;0.00} | {Pct(row.Top5)} | {Pct(row.AgreementTop1)} | {row.ImageBytes:N0} | {row.MaxAccumulatorBits} |"));
        if (r.SearchSeconds != null)
        {
            sb.AppendLine();
            sb.AppendLine("Width search (sensitivity of every layer on the calibration photos, then the greedy choice), wall time: " +
                string.Join("; ", r.SearchSeconds.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value:F0} s"))) + ".");
        }
        var mixed = r.Rows.Where(x => x.Widths != null).ToList();
        if (mixed.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Per-layer weight widths of the mixed rows (layers in table order):");
            sb.AppendLine();
            var names = mixed[0].Widths!.Split(',').Select(p => p.Split('=')[0]).ToList();
            sb.AppendLine("| layer | " + string.Join(" | ", mixed.Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Scheme.ToString().ToLowerInvariant()} {x.FlashBudget / 1e6:0.#} MB"))) + " |");
            sb.AppendLine("| --- |" + string.Concat(mixed.Select(_ => " ---: |")));
            var maps = mixed.Select(x => x.Widths!.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1])).ToList();
            foreach (var n in names)
                sb.AppendLine($"| {n} | " + string.Join(" | ", maps.Select(m => m.GetValueOrDefault(n, ""))) + " |");
        }
        return sb.ToString();
    }

    static string Pct(double v) => (v * 100).ToString("F2", CultureInfo.InvariantCulture) + " %";

    /// <summary>Top-1 against weight bits (a width study) or against image bytes (a budget study), one series per scheme (and method); a budget study also plots the agreement with float.</summary>
    public static void Plot(SweepResult r, string pngPath)
    {
        bool budgets = r.Rows.Any(x => x.FlashBudget != null);
        PlotOne(r, pngPath, budgets, x => x.Top1 * 100, "top-1 accuracy (%)", "top-1", withFloat: true);
        if (budgets) PlotOne(r, Path.ChangeExtension(pngPath, null) + "-agreement.png", budgets, x => x.AgreementTop1 * 100, "top-1 agreement with float (%)", "agreement", withFloat: false);
    }

    static void PlotOne(SweepResult r, string pngPath, bool budgets, Func<SweepRow, double> y, string yLabel, string what, bool withFloat)
    {
        var plot = new ScottPlot.Plot();
        foreach (var group in r.Rows.GroupBy(x => (x.Method, x.Scheme)))
        {
            var rows = group.OrderBy(x => x.ImageBytes).ToList();
            var s = plot.Add.Scatter(rows.Select(x => budgets ? x.ImageBytes / 1e6 : x.WeightBits).ToArray(), rows.Select(y).ToArray());
            s.LegendText = budgets ? $"{group.Key.Method}, {group.Key.Scheme.ToString().ToLowerInvariant()} BN" : $"{group.Key.Scheme.ToString().ToLowerInvariant()} BN";
            s.MarkerSize = 7;
        }
        if (withFloat)
        {
            var f = plot.Add.HorizontalLine(r.FloatTop1 * 100);
            f.LegendText = "float32";
            f.LinePattern = ScottPlot.LinePattern.Dashed;
        }
        plot.Title(budgets ? $"ResNet-50 {what} vs flash image size ({r.Images} images, 16-bit activations)" : $"ResNet-50 {what} vs conv weight bits ({r.Images} images, 16-bit activations)");
        plot.XLabel(budgets ? "flash image (MB)" : "weight bits");
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        AtomicFile.WriteAllBytes(pngPath, plot.GetImageBytes(900, 560, ScottPlot.ImageFormat.Png));
    }
}
