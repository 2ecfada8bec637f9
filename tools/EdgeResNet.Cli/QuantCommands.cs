using EdgeResNet.Common;
using System.CommandLine;
using System.Diagnostics;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Reports;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>Calibrate -> quantise -> pack, inspect a flash image, and the bit-width study.</summary>
public static class QuantCommands
{
    public static IEnumerable<Command> All() => [Pack(), Inspect(), Validate(), Sweep()];

    static Option<BnScheme> SchemeOption() => new("--scheme")
    {
        Description = "How batch norm is kept: Separate (per-channel multiplier and offset tables, Kang 2018) or Folded (into the conv weights)",
        DefaultValueFactory = _ => BnScheme.Separate,
    };

    static Option<int> ActBitsOption() => new("--act-bits") { Description = "Activation bits (4..16)", DefaultValueFactory = _ => 16 };

    static Option<WeightFormat> WeightFormatOption() => new("--weight-format")
    {
        Description = "How each layer's weight format is chosen: Mse (least squared error of four candidates, clips outliers) or Max (largest |w|, never clips)",
        DefaultValueFactory = _ => WeightFormat.Mse,
    };

    static Option<WeightScales?> ScalesOption() => new("--scales")
    {
        Description = "Weight steps: PerLayer (one power of two per layer) or PerChannel (one real step per output channel, MSE-best clipping, " +
            "absorbed by the channel's BN multiplier: no run-time cost). Default PerLayer, PerChannel with --flash-budget",
    };

    static Option<bool> BiasCorrectionOption() => new("--bias-correction")
    {
        Description = "Move each channel's expected weight-rounding error on the calibration photos into its BN offset (on by default with --flash-budget; --bias-correction false turns it off)",
    };

    /// <summary>A byte count as 21000000, 21e6 or 21,000,000.</summary>
    internal static long ParseBytes(string option, string text)
    {
        if (!double.TryParse(text.Replace(",", "").Replace("_", ""), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) || v < 1 || v > 1e12)
            throw new UsageException($"{option} '{text}': give a byte count such as 21000000 or 21e6");
        return (long)v;
    }

    static Option<string?> CalibOption() => new("--calib")
    {
        Description = "Calibration photos: the Calibration split (class_index % 10 == 0) of this labelled folder (default ../shared/imagenet-samples)",
    };

    static Command Pack()
    {
        var bits = new Option<int>("--bits") { Description = "Conv and fc weight bits (2..16)", DefaultValueFactory = _ => 10 };
        var scheme = SchemeOption();
        var actBits = ActBitsOption();
        var bnBits = new Option<int>("--bn-bits") { Description = "Bits of the separate scheme's per-channel BN multiplier", DefaultValueFactory = _ => 16 };
        var calib = CalibOption();
        var output = new Option<string>("--out") { Description = "The flash image to write (written to a temporary file, then renamed)", Required = true };
        var threads = CommandSupport.ThreadsOption();
        var format = WeightFormatOption();
        var minAgreement = new Option<double>("--min-agreement")
        {
            Description = "Percent of calibration photos on which the packed image (run by the runtime engine) must give float's top-1 class; " +
                "below it pack says the model collapsed and exits 4 (the image stays written, for study)",
            DefaultValueFactory = _ => Packer.DefaultMinAgreement * 100,
        };
        var scales = ScalesOption();
        var biasCorrection = BiasCorrectionOption();
        var budget = new Option<string?>("--flash-budget")
        {
            Description = "Choose each conv layer's weight width (2..16) so the image fits in this many bytes (e.g. 16e6 for two A/B slots on a 32 MB chip): " +
                "a greedy search on the measured sensitivity of each layer on the calibration photos. --bits is then ignored",
        };
        var cmd = new Command("pack", "Calibrate the float model, choose every fixed-point format (and with --flash-budget every layer's weight width), " +
            "prove each accumulator's bound, write the flash image, and measure its top-1 agreement with float on the calibration photos")
        {
            bits, scheme, actBits, bnBits, calib, output, threads, format, minAgreement, scales, biasCorrection, budget,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(output));
            double min = pr.GetValue(minAgreement);
            if (min is < 0 or > 100) throw new UsageException($"--min-agreement {min}: give a percentage, 0..100");
            long? flashBudget = pr.GetValue(budget) is string b ? ParseBytes("--flash-budget", b) : null;
            var opt = new QuantOptions(pr.GetValue(bits), pr.GetValue(actBits), pr.GetValue(scheme), pr.GetValue(bnBits), pr.GetValue(format),
                pr.GetValue(scales) ?? (flashBudget != null ? WeightScales.PerChannel : WeightScales.PerLayer),
                pr.GetResult(biasCorrection) != null ? pr.GetValue(biasCorrection) : flashBudget != null);
            opt.Validate();
            var sw = Stopwatch.StartNew();
            var net = CommandSupport.LoadNetwork();
            var set = Dataset.Load(CommandSupport.ImagesDir(pr.GetValue(calib)), Split.Calibration);
            PackResult r = null!;
            AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
            {
                var task = ctx.AddTask($"calibrate on {set.Count} images", maxValue: Math.Max(1, set.Count));
                var search = new Dictionary<string, ProgressTask>();
                var check = ctx.AddTask("check the packed image against float", maxValue: Math.Max(1, set.Count), autoStart: false);
                r = Packer.Pack(net, set, opt, pr.GetValue(output)!, pr.GetValue(threads), done => task.Value = done, done => check.Value = done, flashBudget,
                    (label, done, total) =>
                    {
                        lock (search)
                        {
                            if (!search.TryGetValue(label, out var t)) search[label] = t = ctx.AddTask(label, maxValue: total);
                            t.Value = done;
                        }
                    });
            });
            var conv = r.Convs;
            Console.WriteLine($"wrote {r.Path}: {r.ImageBytes:N0} bytes, {r.Model.Layers.Length} layers, {opt.Scheme.ToString().ToLowerInvariant()} BN, " +
                $"{WidthsSummary(r.Model)} weights ({opt.Scales}{(opt.BiasCorrection ? ", bias-corrected" : "")}), {Quantizer.DescribeActivations(r.Model)}; accumulators need at most {conv.Max(l => l.AccumulatorBits)} bits " +
                $"({conv.Count(l => l.AccumulatorBits <= 32)}/{conv.Count} layers fit int32); {sw.Elapsed.TotalSeconds:F1} s");
            if (r.Widths is WidthChoice w)
                Console.WriteLine($"widths chosen for the budget of {flashBudget:N0} B (mean {w.MeanBits:F2} bits per weight, predicted logit noise-to-signal {w.PredictedLogitNoise:G3}): {w.Widths}");
            Console.WriteLine($"top-1 agreement with float on the {r.CheckedInputs} calibration photos (runtime engine): {r.AgreementTop1:P1}; " +
                $"the evaluation split: edgeresnet eval --model {r.Path}");
            r.CheckAgreement(min / 100);
            Console.WriteLine($"per-layer formats and bounds: edgeresnet inspect {r.Path}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Inspect()
    {
        var image = new Argument<string>("image") { Description = "A flash image (.img)" };
        var cmd = new Command("inspect", "Validate a flash image (header, table, every CRC) and print its layer table: formats, accumulator bounds, section sizes") { image };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            using var flash = new FileFlash(pr.GetValue(image)!);
            var img = FlashImage.Open(flash);
            var m = img.Model;
            Console.WriteLine($"{pr.GetValue(image)}: {img.ImageSize:N0} bytes, CRCs good; {m.Scheme.ToString().ToLowerInvariant()} BN, {WidthsSummary(m)} weights, " +
                $"{Quantizer.DescribeActivations(m)}, input {m.InputH}x{m.InputW}x{m.InputC} with {m.InputFrac} fraction bits, {m.Classes} classes, {m.Macs:N0} MACs per frame; {img.PaddingBytes:N0} bytes of zero padding between sections");
            var t = new Table().AddColumns("#", "layer", "op", "in", "out", "k/s", "w bits.frac", "in frac", "out frac", "BN mult bits.frac", "acc bits", "weights bytes");
            for (int i = 0; i < m.Layers.Length; i++)
            {
                var l = m.Layers[i];
                bool conv = l.Op == QOp.Conv;
                t.AddRow($"{i}", Markup.Escape(l.Name), l.Op + (l.Relu ? "+ReLU" : ""), $"{l.InH}x{l.InW}x{l.InC}", $"{l.OutH}x{l.OutW}x{l.OutC}",
                    l.Op is QOp.Conv or QOp.MaxPool ? $"{l.KernelH}x{l.KernelW}/{l.StrideH}" : "",
                    conv ? $"{l.WeightBits}.{l.WeightFrac}" : "", l.Op == QOp.Add ? $"{l.InFrac},{l.In1Frac}" : $"{l.InFrac}", $"{l.OutFrac}",
                    conv ? (l.MultiplierBits == 0 ? "1 (folded)" : $"{l.MultiplierBits}.{l.MultiplierFrac}") : "",
                    conv ? $"{l.AccumulatorBits}" : "", conv ? $"{l.WeightsSize:N0}" : "");
            }
            AnsiConsole.Write(t);
            Console.WriteLine("acc bits: the proven bound on |accumulator| from the packed weights and the input format, sign included (<= 32: int32 is exact).");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Validate()
    {
        var image = new Argument<string>("image") { Description = "A flash image (.img)" };
        var images = CommandSupport.ImagesOption();
        var split = CommandSupport.SplitOption(Split.Evaluation);
        var limit = new Option<int>("--limit") { Description = "How many photos of the split (the integer simulator takes seconds per photo)", DefaultValueFactory = _ => 10 };
        var threads = CommandSupport.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the per-layer figures as JSON here" };
        var markdown = new Option<string?>("--markdown") { Description = "Also write the per-layer table as Markdown here" };
        var device = new Option<string?>("--device-logits") { Description = "Compare with the board app's logits of a folder run (edgeresnet-device run --camera folder:DIR,Rgb24 --logits-out F): bit-exact or not, per photo" };
        var cmd = new Command("validate",
            "Each layer of a flash image against the float model on the same photos: SQNR in dB, largest absolute error, saturated values and formats; " +
            "then top-1, top-5 and agreement with float; optionally the board app's logits against the host's")
        {
            image, images, split, limit, threads, json, markdown, device,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json), pr.GetValue(markdown));
            string path = pr.GetValue(image)!;
            if (pr.GetValue(limit) < 1) throw new UsageException("--limit must be at least 1");
            QModel model;
            using (var flash = new FileFlash(path)) model = FlashImage.Open(flash).LoadAll();
            var set = Dataset.Load(CommandSupport.ImagesDir(pr.GetValue(images)), pr.GetValue(split), pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException("no photos selected; check --images, --split and --limit");
            var net = CommandSupport.LoadNetwork();
            ValidationReport r = null!;
            AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
            {
                var task = ctx.AddTask($"float + integer, layer by layer: {set.Count} photos", maxValue: set.Count);
                r = LayerValidation.Run(Path.GetFileName(path), model, net, set, pr.GetValue(threads), done => task.Value = done);
            });
            foreach (var e in r.Errors) Console.Error.WriteLine($"error: {e}");
            var t = new Table().AddColumns("#", "layer", "op", "output", "formats", "SQNR dB", "max |error|", "saturated");
            foreach (var l in r.Layers)
                t.AddRow($"{l.Index}", Markup.Escape(l.Layer), l.Op, l.Shape, l.Formats, $"{l.SqnrDb:F1}", $"{l.MaxAbsError:G3}", $"{l.Saturated:N0} of {l.Values:N0}");
            AnsiConsole.Write(t);
            Console.WriteLine($"engine: {r.Engine}");
            Console.WriteLine($"{r.Images} photos: top-1 {r.Top1:P2}, top-5 {r.Top5:P2}, top-1 agreement with float {r.AgreementTop1:P2}; " +
                $"lowest SQNR {r.Layers.Min(l => l.SqnrDb):F1} dB ({r.Layers.MinBy(l => l.SqnrDb)!.Layer}), logits {r.Layers[^1].SqnrDb:F1} dB");
            if (pr.GetValue(device) is string logitsFile)
            {
                using var host = new RuntimeClassifier(path);
                var d = LayerValidation.CompareDevice(logitsFile, host, Dataset.Load(CommandSupport.ImagesDir(pr.GetValue(images)), Split.All));
                Console.WriteLine($"board logits {d.File}: {d.Frames} frames, bit-exact with the host runtime on {d.BitExact}, same top-1 on {d.Top1Same}" +
                    (d.UnknownPhotos.Count > 0 ? $"; {d.UnknownPhotos.Count} frame(s) name photos not in labels.tsv" : ""));
                if (d.Frames == 0) throw new InvalidDataException($"{logitsFile}: no frame names a photo of the folder");
            }
            if (pr.GetValue(json) is string j) CommandSupport.WriteJsonAtomically(j, r);
            if (pr.GetValue(markdown) is string m)
            {
                EdgeResNet.Tools.AtomicFile.WriteAllText(m, LayerValidation.Markdown(r, "./edgeresnet validate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2))));
                Console.WriteLine($"wrote {m}");
            }
            return r.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static Command Sweep()
    {
        var bits = new Option<string>("--bits") { Description = "Weight bit widths: a range 6..16 or a list 8,10,12", DefaultValueFactory = _ => "6..16" };
        var schemes = new Option<string>("--schemes") { Description = "Comma-separated BN schemes", DefaultValueFactory = _ => "separate,folded" };
        var actBits = ActBitsOption();
        var images = CommandSupport.ImagesOption();
        var split = CommandSupport.SplitOption(Split.Evaluation);
        var limit = new Option<int?>("--limit") { Description = "Only the first N images of the split" };
        var output = new Option<string>("--out") { Description = "Folder for sweep.md, sweep.json and sweep.png", Required = true };
        var threads = CommandSupport.ThreadsOption();
        var format = WeightFormatOption();
        var methods = new Option<string?>("--methods")
        {
            Description = "Comma-separated: per-layer (one power-of-two step per layer), per-channel (a real step per output channel), per-channel+bc (and bias correction), " +
                "per-layer+bc, mixed (per-channel+bc, widths chosen per budget; needs --flash-budgets). Default per-layer, or per-layer,per-channel+bc,mixed with --flash-budgets",
        };
        var budgets = new Option<string?>("--flash-budgets")
        {
            Description = "Comma-separated image sizes in bytes (e.g. 16e6,21e6,25.6e6): each uniform method runs at the widest width that fits, mixed at the budget (--bits is then ignored)",
        };
        var cmd = new Command("sweep", "The accuracy study: for each scheme and weight width (or flash budget) and method, quantise, lay out the flash image and evaluate it on the runtime engine; " +
            "float baseline on the same images. Widths are only ever chosen on the calibration photos")
        {
            bits, schemes, actBits, images, split, limit, output, threads, format, methods, budgets,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputDir(pr.GetValue(output));
            var bitList = ParseBits(pr.GetValue(bits)!);
            var schemeList = pr.GetValue(schemes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => Enum.TryParse<BnScheme>(s, ignoreCase: true, out var v) ? v : throw new UsageException($"unknown scheme '{s}'; use separate or folded")).ToList();
            var budgetList = pr.GetValue(budgets)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(b => ParseBytes("--flash-budgets", b)).ToList();
            var methodList = (pr.GetValue(methods) ?? (budgetList != null ? "per-layer,per-channel+bc,mixed" : "per-layer"))
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            foreach (var m in methodList) BitWidthSweep.OptionsOf(m, BnScheme.Separate, 8, 16, WeightFormat.Mse); // names an unknown method before any work
            if (methodList.Contains("mixed") && budgetList == null) throw new UsageException("--methods mixed chooses widths for a flash budget: give --flash-budgets");
            int t = pr.GetValue(threads), act = pr.GetValue(actBits);
            var fmt = pr.GetValue(format);
            string dir = CommandSupport.ImagesDir(pr.GetValue(images));
            var set = Dataset.Load(dir, pr.GetValue(split), pr.GetValue(limit));
            var calibration = Dataset.Load(dir, Split.Calibration);
            if (set.Select(x => x.FileName).Intersect(calibration.Select(x => x.FileName)).Any() && methodList.Contains("mixed"))
                Console.Error.WriteLine("warning: the evaluated photos include calibration photos, which the width search sees; use --split Evaluation for figures to report");
            var net = CommandSupport.LoadNetwork();
            var cal = Calibrate(net, dir, t);
            var calibrationInputs = new float[calibration.Count][];
            float[] CalibrationInput(int i) => calibrationInputs[i] ??= CaffePreprocessing.Run(RgbImage.Load(calibration[i].Path));
            var settings = budgetList != null
                ? BitWidthSweep.BudgetSettings(Quantizer.Quantize(net, cal, new QuantOptions(2, act)).Layers, budgetList, schemeList, methodList, act, fmt)
                : schemeList.SelectMany(sc => bitList.SelectMany(b => methodList.Select(m => new SweepSetting(m, BitWidthSweep.OptionsOf(m, sc, b, act, fmt))))).ToList();
            SweepResult result = null!;
            AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = BitWidthSweep.Run(net, cal, set, settings, t, (label, done, total) =>
                {
                    lock (tasks)
                    {
                        if (!tasks.TryGetValue(label, out var task)) tasks[label] = task = ctx.AddTask(label, maxValue: total);
                        task.Value = done;
                    }
                }, CalibrationInput);
            });
            string outDir = pr.GetValue(output)!;
            Directory.CreateDirectory(outDir);
            string command = "./edgeresnet sweep " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2));
            string md = BitWidthSweep.Markdown(result, command);
            EdgeResNet.Tools.AtomicFile.WriteAllText(Path.Combine(outDir, "sweep.md"), md);
            CommandSupport.WriteJsonAtomically(Path.Combine(outDir, "sweep.json"), result);
            BitWidthSweep.Plot(result, Path.Combine(outDir, "sweep.png"));
            Console.WriteLine(md);
            Console.WriteLine($"wrote {outDir}/sweep.md, sweep.json, sweep.png" + (budgetList != null ? ", sweep-agreement.png" : ""));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>"10-bit" for one width, "4..8-bit (mixed, mean 6.21 bits per weight)" for several.</summary>
    internal static string WidthsSummary(QModel m)
    {
        var convs = m.Layers.Where(l => l.Op == QOp.Conv).ToList();
        if (convs.Select(l => l.WeightBits).Distinct().Count() == 1) return m.WeightWidths;
        double mean = convs.Sum(l => (double)l.WeightBits * l.ReduceSize * l.OutC) / convs.Sum(l => (double)l.ReduceSize * l.OutC);
        return $"{m.WeightWidths[..^8]} (mixed, mean {mean:F2} bits per weight)";
    }

    static IReadOnlyList<int> ParseBits(string s)
    {
        try
        {
            if (s.Contains(".."))
            {
                var p = s.Split("..");
                int lo = int.Parse(p[0]), hi = int.Parse(p[1]);
                return Enumerable.Range(lo, hi - lo + 1).ToList();
            }
            return s.Split(',').Select(int.Parse).ToList();
        }
        catch (FormatException) { throw new UsageException($"--bits '{s}' is not a range like 6..16 or a list like 8,10,12"); }
    }

    internal static Calibration Calibrate(Network net, string? calibDir, int threads)
    {
        var set = Dataset.Load(CommandSupport.ImagesDir(calibDir), Split.Calibration);
        Calibration cal = null!;
        AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
        {
            var task = ctx.AddTask($"calibrate on {set.Count} images", maxValue: Math.Max(1, set.Count));
            cal = Packer.Calibrate(net, set, threads, done => task.Value = done);
        });
        return cal;
    }
}
