using System.CommandLine;
using System.Diagnostics;
using EdgeResNet.Common;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Reports;
using EdgeResNet.Tools.Weights;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>
/// The main job, end to end on the host: weights -> 10-bit image -> an emulated SPI NOR chip -> the
/// board app classifying camera frames from it -> the runtime's accuracy on every photo -> the footprint.
/// </summary>
public static class DemoCommand
{
    /// <summary>The environment variable the ./edgeresnet wrapper sets to the board app it built.</summary>
    const string DeviceAppVariable = "EDGERESNET_DEVICE_APP";

    /// <summary>The RAM budget of the demo's board run and its second footprint: an STM32H747's 1 MiB of SRAM.</summary>
    const long OneMiB = 1L << 20;

    public static Command Create()
    {
        var images = CommandSupport.ImagesOption();
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N photos (default: all)" };
        var frames = new Option<int>("--frames") { Description = "Camera frames the board app classifies from the emulated flash", DefaultValueFactory = _ => 5 };
        var threads = CommandSupport.ThreadsOption();
        var cmd = new Command("demo",
            "The product end to end: fetch and verify the weights, pack the 10-bit separate image (skipped when up to date), flash it into an emulated " +
            "W25Q512JV through the SPI NOR driver, run the board app on YUYV camera frames streamed from that chip within a 1 MiB runtime plan (an " +
            "STM32H747's SRAM), evaluate the integer runtime on every photo (top-1, top-5, agreement with float), show the footprint of the default " +
            "2 MiB plan and of the 1 MiB plan, and write an HTML report.")
        {
            images, limit, frames, threads,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            int t = pr.GetValue(threads), n = pr.GetValue(frames);
            if (t < 1 || n < 1) throw new UsageException("--threads and --frames must be at least 1");
            var clock = Stopwatch.StartNew();
            string dir = pr.GetValue(images) ?? RepoPaths.SampleImages() ?? throw new DirectoryNotFoundException(
                "../shared/imagenet-samples was not found beside the repository; give a labelled photo folder (labels.tsv) with --images DIR");
            var set = Dataset.Load(dir, Split.All, pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException($"no photos in {dir}/labels.tsv (or --limit 0)");
            string deviceApp = DeviceApp();

            Step(1, "weights: fetch (npm) and verify every file");
            var cache = WeightsCache.Default();
            string modelJson = cache.Ensure(verifyHashes: true, log: msg => Console.WriteLine("  " + msg));
            Network? network = null;
            Network Net() => network ??= TfjsImporter.Load(modelJson);

            Step(2, "pack the 10-bit separate image");
            string imagePath = Path.Combine(cache.CacheDir, "resnet50-sep-w10.img");
            var calibration = Dataset.Load(dir, Split.Calibration);
            PackResult? packed = null;
            AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
            {
                var task = ctx.AddTask($"calibrate on {calibration.Count} photos", maxValue: Math.Max(1, calibration.Count));
                var check = ctx.AddTask("check the packed image against float", maxValue: Math.Max(1, calibration.Count));
                packed = Packer.PackIfStale(Net, calibration, new QuantOptions(), imagePath, t, done => task.Value = done, done => check.Value = done);
                task.Value = task.MaxValue;
                check.Value = check.MaxValue;
            });
            Console.WriteLine(packed == null ? $"  {imagePath}: up to date (same options, calibration photos and code), every CRC checked"
                : $"  wrote {imagePath}: {packed.ImageBytes:N0} bytes in {packed.Seconds:F1} s; top-1 agreement with float on the {packed.CheckedInputs} calibration photos {packed.AgreementTop1:P1}");

            Step(3, "flash it into an emulated W25Q512JV through the SPI NOR driver");
            string chip = Path.Combine(cache.CacheDir, "demo-w25q512jv.bin");
            var image = File.ReadAllBytes(imagePath);
            using (var nor = SpiNorDevices.OpenEmulated(chip, create: true))
            {
                var sw = Stopwatch.StartNew();
                var counts = SectorWriter.WriteImage(nor.Flash, 0, image, null);
                Console.WriteLine($"  {nor.Description}: {image.Length:N0} bytes on the chip, written where needed and read back, in {sw.Elapsed.TotalSeconds:F1} s ({counts})");
            }

            Step(4, $"the board app classifies {n} YUYV camera frames in a 1 MiB runtime plan, weights streamed over the emulated SPI bus");
            int board = RunBoardApp(deviceApp, ["run", "--image", $"emulated-nor:{chip}", "--camera", $"folder:{dir},Yuyv", "--frames", $"{n}", "--labels", cache.LabelsJsonPath,
                "--ram-budget", $"{OneMiB}"]);
            if (board != 0)
            {
                Console.Error.WriteLine($"error: the board app exited with code {board} (its messages are above)");
                return board;
            }

            Step(5, $"the integer runtime on {set.Count} photos");
            using var runtime = new RuntimeClassifier(imagePath);
            var report = CommandSupport.RunEval(runtime, set, t)
                .WithAgreement(CommandSupport.FloatTop1(set, t, () => new FloatClassifier(new FloatReference(Net()))));
            CommandSupport.PrintReport(report);

            Step(6, "footprint: the default 2 MiB plan and the 1 MiB plan");
            var input = Footprint.SampleInput(imagePath, dir);
            var camera = new CameraFrame(640, 480, PixelFormat.Yuyv);
            var fp = Footprint.Measure(imagePath, input, ExecutionPlan.DefaultRamBudgetBytes, BoardProfile.All, camera: camera);
            Console.WriteLine($"  conv kernel: {fp.Kernel}");
            Console.WriteLine($"  2 MiB plan: runtime RAM {fp.RuntimeRamBytes:N0} B (arena {fp.ArenaBytes:N0} + weight buffers {fp.WeightBufferBytes:N0} + bookkeeping {fp.EngineStateBytes:N0}); " +
                $"flash read per frame {fp.FlashBytesPerFrame:N0} B = {fp.FlashReadRatio:F3} x the {fp.ImageBytes:N0}-byte image; board app RAM for {camera} frames {fp.DeviceRamBytes:N0} B");
            // A 1 MiB board takes a camera frame sized for the network (224x224 RGB565, 100,352 B), not a 640x480 one (614,400 B).
            var small = new CameraFrame(224, 224, PixelFormat.Rgb565);
            var fp1 = Footprint.Measure(imagePath, input, OneMiB, BoardProfile.All, camera: small);
            Console.WriteLine($"  1 MiB plan: runtime RAM {fp1.RuntimeRamBytes:N0} B, the engine's heap measured {fp1.MeasuredEngineHeapBytes:N0} B, " +
                $"{fp1.MeasuredAllocatedPerFrameBytes:N0} B allocated per frame; flash read per frame {fp1.FlashBytesPerFrame:N0} B = {fp1.FlashReadRatio:F3} x the image");
            Console.WriteLine($"  boards, beside a {small} camera frame ({small.BufferBytes:N0} B):");
            foreach (var b in fp1.Boards) Console.WriteLine($"  {b.Board}: {(b.Fits ? "" : "does not fit; ")}{b.Limit}");
            Console.WriteLine($"  per layer: edgeresnet inspect {imagePath}; the whole plan: edgeresnet footprint {imagePath} [--ram-budget {OneMiB}] [--frame 224x224,Rgb565]");

            Step(7, "report: model, layers, RAM plans, flash traffic, accuracy, boards");
            string reportPath = Path.Combine(cache.CacheDir, "demo-report.html");
            var data = RuntimeCommands.ReportBuilder(imagePath, dir, photos: 0, validatePhotos: 3, camera, t, sweep: null, accuracy: report, loadNetwork: Net, footprint: fp)
                with { SecondPlan = fp1 };
            HtmlReport.Write(reportPath, data);
            Console.WriteLine($"  wrote {reportPath} (open it in a browser; per-layer SQNR from 3 photos: edgeresnet validate {imagePath})");

            Console.WriteLine($"demo done in {clock.Elapsed.TotalSeconds:F0} s");
            return report.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.BadInput;
        }));
        return cmd;
    }

    static void Step(int i, string what) => Console.WriteLine($"== {i}/7 {what}");

    /// <summary>The board app's dll: the one the ./edgeresnet wrapper built, or .build/device in the repository.</summary>
    static string DeviceApp()
    {
        string? path = Environment.GetEnvironmentVariable(DeviceAppVariable);
        if (string.IsNullOrEmpty(path) && RepoPaths.FindRoot() is string root) path = Path.Combine(root, ".build", "device", "edgeresnet-device.dll");
        return path != null && File.Exists(path) ? path : throw new UnavailableException(
            "the board app is not built; run the demo through the ./edgeresnet wrapper, which builds it, or build it with: dotnet build firmware/EdgeResNet.Device -c Release -o .build/device");
    }

    /// <summary>Runs the board app as its own process (tools never link firmware), passes its output through, indented, and returns its exit code.</summary>
    static int RunBoardApp(string dll, string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var app = Process.Start(start) ?? throw new UnavailableException("could not start dotnet for the board app");
        app.ErrorDataReceived += (_, e) => { if (e.Data != null) Console.Error.WriteLine("  board: " + e.Data); };
        app.BeginErrorReadLine();
        while (app.StandardOutput.ReadLine() is string line) Console.WriteLine("  board: " + line);
        app.WaitForExit();
        return app.ExitCode;
    }
}
