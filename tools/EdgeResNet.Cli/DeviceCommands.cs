using System.CommandLine;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Evaluation;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>The device side from the host: the camera-frame preprocessing check (and flashing).</summary>
public static class DeviceCommands
{
    public static IEnumerable<Command> All() => [CheckPreprocessing()];

    internal static Option<PixelFormat> FormatOption(PixelFormat fallback) => new("--format")
    {
        Description = "Sensor pixel format the photos are turned into first: Rgb24 (lossless), Bgr24, Rgb565, Yuyv, Grey8",
        DefaultValueFactory = _ => fallback,
    };

    static Command CheckPreprocessing()
    {
        var model = new Option<string>("--model") { Description = "A flash image (.img): its input format is the target", Required = true };
        var images = Commands.ImagesOption();
        var limit = new Option<int?>("--limit") { Description = "Only the first N photos" };
        var format = FormatOption(PixelFormat.Rgb24);
        var threads = Commands.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON here" };
        var cmd = new Command("check-preprocessing",
            "The device's integer preprocessing of camera frames against the tools' float preprocessing, on every photo: " +
            "largest difference in quantised input units, and how many photos keep the runtime's top-1. Exit 4 if agreement is below 99.5 %.")
        {
            model, images, limit, format, threads, json,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            var set = Dataset.Load(Commands.ImagesDir(pr.GetValue(images)), Split.All, pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException("no images selected; check --images and --limit");
            int t = pr.GetValue(threads);
            if (t < 1) throw new UsageException("--threads must be at least 1");
            PreprocessingReport r = null!;
            AnsiConsole.Progress().Columns(Commands.ProgressColumns()).Start(ctx =>
            {
                var task = ctx.AddTask($"{pr.GetValue(format)} frames: {set.Count} photos", maxValue: set.Count);
                r = PreprocessingComparison.Run(pr.GetValue(model)!, set, pr.GetValue(format), t, done => task.Value = done);
            });
            foreach (var e in r.Errors) Console.Error.WriteLine($"error: {e}");
            Console.WriteLine($"{r.Format} frames, {r.Images} photos, image {r.Model}: largest |difference| {r.MaxAbsDifference} quantised input unit(s); " +
                $"{r.ImagesWithDifference} photo(s) with any difference ({r.ValuesDiffering:N0} of {r.Values:N0} values); " +
                $"top-1 unchanged on {r.Top1Same}/{r.Images} = {r.Top1Agreement:P2}; {r.Seconds:F1} s on {r.Threads} thread(s)");
            if (r.SensorFormatTop1Agreement is double sensor)
                Console.WriteLine($"what {r.Format} itself costs: top-1 on the frame equals top-1 on the original photo for {sensor:P2} of photos");
            if (pr.GetValue(json) is string j) Commands.WriteJsonAtomically(j, r);
            if (r.Errors.Count > 0) return ExitCodes.BadInput;
            return r.Top1Agreement >= 0.995 ? ExitCodes.Ok : ExitCodes.BelowTarget;
        }));
        return cmd;
    }
}
