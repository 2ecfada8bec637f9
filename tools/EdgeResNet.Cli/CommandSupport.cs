using EdgeResNet.Common;
using System.CommandLine;
using System.Text.Json;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Weights;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>What the commands share: the common options, loading a model, progress bars, eval reports and JSON output.</summary>
public static class CommandSupport
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

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

    /// <summary>
    /// Says so on stderr when the engine threads asked for outnumber the processors: an engine's threads wait for each
    /// other's share of a layer by spinning, so on fewer processors they run slower, not faster.
    /// </summary>
    internal static void WarnIfMoreThreadsThanProcessors(int engineThreads)
    {
        if (engineThreads > Environment.ProcessorCount)
            Console.Error.WriteLine($"warning: {engineThreads} engine threads on {Environment.ProcessorCount} processors: the threads of a frame wait for each other by spinning, so more threads than processors run slower; use at most --threads {Environment.ProcessorCount}");
    }

    internal static Option<string?> ImagesOption() => new("--images")
    {
        Description = "Folder of photos with labels.tsv (default: ../shared/imagenet-samples beside the repository)",
    };

    internal static Option<Split> SplitOption(Split defaultSplit) => new("--split")
    {
        Description = "Which images: All, Calibration (class_index % 10 == 0) or Evaluation (the others)",
        DefaultValueFactory = _ => defaultSplit,
    };

    internal static string ImagesDir(string? given) => given ?? RepoPaths.SampleImages()
        ?? throw new UsageException("no --images given and ../shared/imagenet-samples was not found beside the repository");

    internal static Option<long?> RamBudgetOption() => new("--ram-budget")
    {
        Description = "RAM budget in bytes for the runtime's plan (band heights are chosen to fit it; less RAM means more weight re-reads). Default: 2 MiB (2097152), plus each thread's own buffers past the first",
    };

    public enum Engine { Simulator, Runtime }

    internal static Option<Engine> EngineOption(Engine defaultEngine) => new("--engine")
    {
        Description = "For a flash image: Runtime (the device runtime, streaming weights from the file; fast) or Simulator (the tools' whole-tensor reference twin, bit-exact with the runtime; slow)",
        DefaultValueFactory = _ => defaultEngine,
    };

    /// <param name="ramBudgetBytes">The runtime engine's RAM budget (null: the default); the simulator and float have none.</param>
    internal static IClassifier LoadModel(string model, Engine engine, long? ramBudgetBytes = null)
    {
        if (ramBudgetBytes != null && (model == "float" || engine != Engine.Runtime))
            throw new UsageException("--ram-budget plans the runtime engine's memory: give it with a flash image and --engine Runtime");
        if (model == "float") return LoadFloat();
        if (File.Exists(model)) return engine == Engine.Runtime ? new RuntimeClassifier(model, ramBudgetBytes: ramBudgetBytes) : SimulatedClassifier.FromImage(model);
        throw new UsageException($"--model '{model}' is neither 'float' nor an existing flash image file (make one with 'edgeresnet pack')");
    }

    internal static Network LoadNetwork() =>
        TfjsImporter.Load(WeightsCache.Default().Ensure(verifyHashes: false, log: msg => Console.Error.WriteLine(msg)));

    internal static FloatClassifier LoadFloat() => new(new FloatReference(LoadNetwork()));

    /// <summary>The float model's top-1 per image, from the prediction cache (computed where missing).</summary>
    internal static Dictionary<string, int> FloatTop1(IReadOnlyList<LabeledImage> set, int threads, Func<FloatClassifier>? loadFloat = null)
    {
        var cache = new FloatPredictionCache(WeightsCache.Default().CacheDir);
        Dictionary<string, int> result = null!;
        AnsiConsole.Progress().Columns(ProgressColumns()).Start(ctx =>
        {
            var task = ctx.AddTask("float reference (for agreement; cached)", maxValue: set.Count);
            result = cache.Top1(set, loadFloat ?? LoadFloat, threads, (done, total) => { task.MaxValue = total; task.Value = done; });
            task.Value = task.MaxValue;
        });
        return result;
    }

    internal static ProgressColumn[] ProgressColumns() =>
        [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()];

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

    /// <summary>Before any work: every output file given can be written (a null is an option not given).</summary>
    internal static void CheckOutputs(params string?[] files)
    {
        foreach (var f in files) if (f != null) AtomicFile.CheckWritable(f);
    }

    /// <summary>Before any work: files can be written into <paramref name="dir"/> (made if missing).</summary>
    internal static void CheckOutputDir(string? dir)
    {
        if (dir != null) AtomicFile.CheckWritable(Path.Combine(dir, ".edgeresnet-write-check"));
    }

    /// <summary>A JSON file this program wrote (snake_case), or a clear error naming the file.</summary>
    internal static T ReadJson<T>(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: not found", path);
        try { return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty JSON"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not the JSON this program writes ({e.Message})"); }
    }

    /// <summary>Writes JSON to a temporary file and renames it, so a failure never leaves half a report.</summary>
    internal static void WriteJsonAtomically<T>(string path, T value)
    {
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, Json));
        Console.WriteLine($"wrote {path}");
    }
}
