using EdgeResNet.Tools.Float;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using System.CommandLine;
using System.Diagnostics;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Onnx;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Reports;
using EdgeResNet.Tools.Packing;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>The device runtime from the host: footprint and benchmark.</summary>
public static class RuntimeCommands
{
    public static IEnumerable<Command> All() => [FootprintCommand(), Report(), Bench(), Profile(), MiniImage()];

    static Command Profile()
    {
        var image = new Argument<string>("image") { Description = "A flash image (.img)" };
        var frames = new Option<int>("--frames") { Description = "Frames to profile (after three warm-up frames); each figure is its median over them", DefaultValueFactory = _ => 10 };
        var json = new Option<string?>("--json") { Description = "Also write the profile as JSON (per layer: ms, G MAC/s, flash bytes, share of the frame)" };
        var markdown = new Option<string?>("--markdown") { Description = "Also write the profile as Markdown: a summary by kind of layer, then every layer" };
        var threads = new Option<int>("--threads") { Description = "Threads one frame runs on (as bench --threads)", DefaultValueFactory = _ => 1 };
        var budget = CommandSupport.RamBudgetOption();
        var cmd = new Command("profile", "Per-layer profile of the runtime engine: milliseconds, G MAC/s, flash bytes read and share of the frame for every layer (weights streamed from the image held in RAM, as bench does)")
        {
            image, frames, threads, json, markdown, budget,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json), pr.GetValue(markdown));
            CommandSupport.WarnIfMoreThreadsThanProcessors(pr.GetValue(threads));
            var r = LayerProfile.Run(pr.GetValue(image)!, pr.GetValue(frames), EdgeResNet.Tools.RepoPaths.SampleImages(), pr.GetValue(threads), pr.GetValue(budget));
            var t = new Table().AddColumns("#", "layer", "op", "MACs", "ms", "G MAC/s", "flash bytes", "share");
            foreach (var l in r.Layers)
                t.AddRow($"{l.Index}", Markup.Escape(l.Name), l.Op, l.Macs > 0 ? $"{l.Macs:N0}" : "", $"{l.Ms:F2}", l.Macs > 0 ? $"{l.GMacPerSecond:F1}" : "",
                    l.FlashBytes > 0 ? $"{l.FlashBytes:N0}" : "", $"{l.Share:P1}");
            AnsiConsole.Write(t);
            Console.WriteLine($"{r.Model}: {r.FrameMs:F1} ms per frame (median of {r.Frames}, {r.Threads} thread(s), {r.Kernel}), {r.GMacPerSecond:F1} G MAC/s, {r.FlashBytesPerFrame:N0} flash bytes per frame");
            if (pr.GetValue(json) is string path) CommandSupport.WriteJsonAtomically(path, r);
            if (pr.GetValue(markdown) is string md)
            {
                string command = $"./edgeresnet profile {pr.GetValue(image)} --frames {r.Frames} --threads {r.Threads}" + (pr.GetValue(budget) is long b ? $" --ram-budget {b}" : "");
                EdgeResNet.Tools.AtomicFile.WriteAllText(md, LayerProfile.Markdown(r, command));
                Console.WriteLine($"wrote {md}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command MiniImage()
    {
        var output = new Option<string>("--out") { Description = "Folder for mini.img, input.bin (int16 LE) and expected.txt (one logit per line); frame.yuyv (320x240) and expected-frame.txt (its logits through the integer preprocessing)", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights and input", DefaultValueFactory = _ => 1 };
        var cmd = new Command("mini-image", "Pack a small seeded network of ResNet-50's structure and a quantised input, with the simulator's logits: test material for other hosts (the Mono check in .ci/run)")
        {
            output, seed,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputDir(pr.GetValue(output));
            var r = MiniImageFixture.Write(pr.GetValue(output)!, pr.GetValue(seed));
            Console.WriteLine($"wrote {r.ImagePath} ({r.ImageBytes:N0} bytes), input.bin, expected.txt ({r.Logits} logits; the .NET runtime agrees), frame.yuyv, expected-frame.txt");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    static Command FootprintCommand()
    {
        var image = new Argument<string>("image") { Description = "A flash image (.img)" };
        var board = new Option<string?>("--board") { Description = $"Only this board ({string.Join(", ", BoardProfile.All.Select(b => b.Name))})" };
        var budget = CommandSupport.RamBudgetOption();
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON here" };
        var reference = new Option<bool>("--reference-kernels") { Description = "Plan and run with the reference conv kernel, as the netstandard build on a board does (slow frame)" };
        var frame = new Option<string?>("--frame") { Description = "A camera frame size and format, WIDTHxHEIGHT[,FORMAT] (default format Yuyv): the board app's preprocessing and frame buffer are counted too" };
        var threads = new Option<int>("--threads") { Description = "Threads one frame runs on: each has its own weight buffers, im2col rows and group scratch, counted here (the default budget grows by them)", DefaultValueFactory = _ => 1 };
        var tradeoff = new Option<bool>("--tradeoff") { Description = "Instead: the Pareto curve of runtime RAM against flash bytes read per frame, over plans from the smallest feasible budget up to 4 MiB (each measured on one frame); --json and --png write it" };
        var png = new Option<string?>("--png") { Description = "With --tradeoff: also plot the curve here (PNG)" };
        var cmd = new Command("footprint", "Memory and flash footprint of the runtime for a flash image: the plan (arena, buffers, schedule, flash bytes read per frame) and a measured run on this machine, and whether it fits named boards")
        {
            image, board, budget, json, reference, frame, threads, tradeoff, png,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json), pr.GetValue(png));
            string path = pr.GetValue(image)!;
            if (pr.GetValue(png) != null && !pr.GetValue(tradeoff)) throw new UsageException("--png plots the --tradeoff curve: give --tradeoff too");
            if (pr.GetValue(tradeoff))
            {
                TradeoffReport? curve = null;
                AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
                {
                    var task = ctx.AddTask("plans, one frame each", maxValue: 1);
                    curve = RamFlashTradeoff.Run(path, referenceKernels: pr.GetValue(reference), threads: pr.GetValue(threads),
                        progress: (done, all) => { task.MaxValue = all; task.Value = done; });
                });
                var ct = new Table().AddColumns("runtime RAM", "flash bytes per frame", "x the image", "bands in all", "budget");
                foreach (var p in curve!.Pareto)
                    ct.AddRow($"{p.RuntimeRamBytes:N0} B ({p.RuntimeRamBytes / 1048576.0:F2} MiB)", $"{p.FlashBytesPerFrame:N0}", $"{p.FlashReadRatio:F3}", $"{p.Bands}", $"{p.RamBudgetBytes:N0}");
                AnsiConsole.Write(ct);
                Console.WriteLine($"{curve.Image}: {curve.Pareto.Count} Pareto plans of {curve.PlansTried} distinct, budgets {curve.SmallestRamBytes:N0} B (the smallest plan) to {curve.MaxBudgetBytes:N0} B; {curve.Threads} thread(s), {curve.Kernel}");
                if (pr.GetValue(json) is string cj) CommandSupport.WriteJsonAtomically(cj, curve);
                if (pr.GetValue(png) is string cp) { RamFlashTradeoff.Plot(curve, cp); Console.WriteLine($"wrote {cp}"); }
                return ExitCodes.Ok;
            }
            var boards = pr.GetValue(board) is string b ? [BoardProfile.Find(b)] : BoardProfile.All;
            var camera = pr.GetValue(frame) is string frameSpec ? ParseFrame(frameSpec) : null;
            var r = Footprint.Measure(path, Footprint.SampleInput(path, EdgeResNet.Tools.RepoPaths.SampleImages()), pr.GetValue(budget), boards, pr.GetValue(reference), camera, pr.GetValue(threads));
            var t = new Table().AddColumns("figure", "value");
            t.AddRow("flash image", $"{r.ImageBytes:N0} B");
            t.AddRow("conv kernel planned for", Markup.Escape(r.Kernel));
            t.AddRow("multiply-accumulates per frame", $"{r.Macs:N0}");
            t.AddRow("arena (activations, one array)", r.SegmentBytes > r.TensorAreaBytes + r.ScratchBytes
                ? $"{r.ArenaBytes:N0} B = streamed segment {r.SegmentBytes:N0} (windows, rings, band scratch, the sink; more than the block-by-block part's tensor area {r.TensorAreaBytes:N0} + band scratch {r.ScratchBytes:N0}) + im2col {r.Im2ColBytes:N0}"
                : $"{r.ArenaBytes:N0} B = tensor area {r.TensorAreaBytes:N0} + band scratch {r.ScratchBytes:N0} + im2col {r.Im2ColBytes:N0}" + (r.SegmentBytes > 0 ? $" (the streamed segment fits in the first two: {r.SegmentBytes:N0})" : ""));
            t.AddRow("weight group + packed bytes + BN tables + accumulators", $"{r.WeightBufferBytes:N0} B" + (r.Threads > 1 ? $" (all but the BN tables once per thread, as are the arena's im2col rows: {r.Threads} threads)" : ""));
            t.AddRow("logits, bookkeeping, object headers (a 64-bit .NET heap)", $"{r.EngineStateBytes:N0} B" + (r.Threads > 1 ? $" (with room for starting {r.Threads - 1} more thread(s))" : ""));
            t.AddRow("[bold]runtime peak RAM (all of the above)[/]", $"[bold]{r.RuntimeRamBytes:N0} B = {r.RuntimeRamBytes / 1048576.0:F2} MiB[/] (budget {r.RamBudgetBytes:N0} B)");
            if (camera != null)
            {
                t.AddRow($"integer preprocessing of {camera} frames", $"{r.PreprocessingBytes:N0} B (row buffer, ring of resampled rows, tap and quantisation tables)");
                t.AddRow("raw frame buffer", $"{r.FrameBufferBytes:N0} B");
                t.AddRow("[bold]board app RAM (runtime + preprocessing + frame)[/]", $"[bold]{r.DeviceRamBytes:N0} B = {r.DeviceRamBytes / 1048576.0:F2} MiB[/]");
            }
            t.AddRow("flash bytes read per frame", $"{r.FlashBytesPerFrame:N0} B = {r.FlashReadRatio:F3} x the image, in {r.FlashReadsPerFrame:N0} reads");
            t.AddRow("measured: engine heap / allocated per frame", $"{r.MeasuredEngineHeapBytes:N0} B / {r.MeasuredAllocatedPerFrameBytes:N0} B");
            t.AddRow("measured: process peak working set (.NET host)", $"{r.MeasuredPeakWorkingSetBytes:N0} B");
            t.AddRow("measured: one frame on this machine", $"{r.MeasuredFrameMs:F0} ms");
            AnsiConsole.Write(t);
            Console.WriteLine("schedule (bands x rows per step; weights are streamed once per band):");
            Console.Write(r.Schedule);
            var bt = new Table().AddColumns("board", "fits", "what limits it");
            foreach (var f in r.Boards) bt.AddRow(f.Board, f.Fits ? "yes" : "[red]no[/]", Markup.Escape(f.Limit));
            AnsiConsole.Write(bt);
            if (pr.GetValue(json) is string j) CommandSupport.WriteJsonAtomically(j, r);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>WIDTHxHEIGHT[,FORMAT], format Yuyv by default.</summary>
    internal static CameraFrame ParseFrame(string s)
    {
        var parts = s.Split(',');
        var (w, h) = EdgeResNet.Common.DeviceStrings.ParseSize(parts[0]);
        return new CameraFrame(w, h, parts.Length > 1 ? EdgeResNet.Common.DeviceStrings.ParseFormat(parts[1]) : PixelFormat.Yuyv);
    }

    static Command Report()
    {
        var image = new Argument<string>("image") { Description = "A flash image (.img)" };
        var output = new Option<string>("--out") { Description = "The HTML file to write (self-contained: inline CSS and SVG, nothing fetched)", Required = true };
        var images = CommandSupport.ImagesOption();
        var photos = new Option<int>("--photos") { Description = "Photos (all splits) the runtime is evaluated on for the accuracy section; 0 leaves it out", DefaultValueFactory = _ => 200 };
        var validate = new Option<int>("--validate") { Description = "Evaluation photos for the per-layer SQNR (the simulator takes seconds per photo); 0 leaves it out", DefaultValueFactory = _ => 5 };
        var sweep = new Option<string?>("--sweep-json") { Description = "sweep.json of 'edgeresnet sweep', for the accuracy-against-bits curve" };
        var frame = new Option<string>("--frame") { Description = "Camera frame size and format counted in the board app's RAM", DefaultValueFactory = _ => "640x480,Yuyv" };
        var secondBudget = new Option<long?>("--ram-budget")
        {
            Description = "Also show the plan for this RAM budget in bytes beside the default 2 MiB one, with its own boards table (e.g. 1048576, an STM32H747's SRAM; give --frame 224x224,Rgb565 for a frame such a board holds)",
        };
        var threads = CommandSupport.ThreadsOption();
        var cmd = new Command("report", "One self-contained HTML report of a flash image: model, per-layer table (formats, accumulator bounds, flash bytes, SQNR), the RAM plan and flash traffic per step (and a second plan with --ram-budget), accuracy against float, board fit, and the bit-width curve of a sweep")
        {
            image, output, images, photos, validate, sweep, frame, secondBudget, threads,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(output));
            string path = pr.GetValue(image)!, outPath = pr.GetValue(output)!;
            int nPhotos = pr.GetValue(photos), nValidate = pr.GetValue(validate), t = pr.GetValue(threads);
            if (nPhotos < 0 || nValidate < 0) throw new UsageException("--photos and --validate must be 0 or more");
            var sweepResult = pr.GetValue(sweep) is string sj ? CommandSupport.ReadJson<SweepResult>(sj) : null;
            if (sweepResult != null && (sweepResult.Rows == null || sweepResult.Rows.Count == 0))
                throw new InvalidDataException($"{pr.GetValue(sweep)}: no sweep rows; give the sweep.json that 'edgeresnet sweep' writes");
            var camera = ParseFrame(pr.GetValue(frame)!);
            if (pr.GetValue(secondBudget) is long b && b <= 0) throw new UsageException($"--ram-budget {b}: give the second plan's RAM budget in bytes, e.g. 1048576");
            var data = ReportBuilder(path, pr.GetValue(images), nPhotos, nValidate, camera, t, sweepResult, secondBudget: pr.GetValue(secondBudget));
            HtmlReport.Write(outPath, data);
            Console.WriteLine($"wrote {outPath}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>The report's figures: footprint, the runtime's accuracy on <paramref name="photos"/> photos, validate on <paramref name="validatePhotos"/>; the demo calls it too.</summary>
    /// <param name="secondBudget">Also the plan for this RAM budget (<see cref="ReportData.SecondPlan"/>), measured on the same sample frame.</param>
    internal static ReportData ReportBuilder(string path, string? imagesDir, int photos, int validatePhotos, CameraFrame camera, int threads, SweepResult? sweep,
        EvalReport? accuracy = null, Func<EdgeResNet.Tools.Model.Network>? loadNetwork = null, FootprintReport? footprint = null, long? secondBudget = null)
    {
        QModel model;
        using (var flash = new FileFlash(path)) model = FlashImage.Open(flash).LoadAll();
        string? dir = photos > 0 || validatePhotos > 0 ? CommandSupport.ImagesDir(imagesDir) : imagesDir ?? EdgeResNet.Tools.RepoPaths.SampleImages();
        short[]? input = null;
        short[] Input() => input ??= Footprint.SampleInput(path, dir);
        var fp = footprint ?? Footprint.Measure(path, Input(), ExecutionPlan.DefaultRamBudgetBytes, BoardProfile.All, camera: camera);
        // Before the photos: a budget no plan fits fails at once.
        var second = secondBudget is long b ? Footprint.Measure(path, Input(), b, BoardProfile.All, camera: camera) : null;
        loadNetwork ??= CommandSupport.LoadNetwork;
        if (accuracy == null && photos > 0)
        {
            var set = Dataset.Load(dir!, Split.All, photos);
            using var runtime = new RuntimeClassifier(path);
            var floatTop1 = CommandSupport.FloatTop1(set, threads, () => new FloatClassifier(new FloatReference(loadNetwork())));
            accuracy = CommandSupport.RunEval(runtime, set, threads).WithAgreement(floatTop1);
        }
        ValidationReport? validation = null;
        if (validatePhotos > 0)
        {
            var set = Dataset.Load(dir!, Split.Evaluation, validatePhotos);
            var net = loadNetwork();
            AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
            {
                var task = ctx.AddTask($"validate, layer by layer: {set.Count} photos", maxValue: set.Count);
                validation = LayerValidation.Run(Path.GetFileName(path), model, net, set, threads, done => task.Value = done);
            });
        }
        return new ReportData(Path.GetFileName(path), model, fp, accuracy, validation, sweep) { SecondPlan = second };
    }

    static Command Bench()
    {
        var model = new Option<string>("--model") { Description = "A flash image (.img)", Required = true };
        var threads = new Option<int>("--threads") { Description = "Threads one frame runs on (the runtime splits each layer's output channels over them); ONNX Runtime gets this many intra-op threads", DefaultValueFactory = _ => 1 };
        var inFlight = new Option<int>("--frames-in-flight") { Description = "Frames run at once, each on its own engine of --threads threads (throughput; ONNX Runtime still runs one frame at a time)", DefaultValueFactory = _ => 1 };
        var frames = new Option<int>("--frames") { Description = "Frames to time (after one warm-up frame each)", DefaultValueFactory = _ => 10 };
        var vsOrt = new Option<bool>("--vs-ort") { Description = "Also time ONNX Runtime fp32 on the exported float model, in the same run: the two in turn, five frames at a time, which goes first alternating, each block after a warm-up frame" };
        var json = new Option<string?>("--json") { Description = "Also write runtime_ms, ort_ms, ratio (runtime/ort) and more as JSON" };
        var fromFile = new Option<bool>("--flash-file") { Description = "Stream the weights through the image file every frame (a system call per read) instead of from the image held in RAM, as a memory-mapped QSPI flash is read" };
        var budget = CommandSupport.RamBudgetOption();
        var vsBudget = new Option<long?>("--vs-ram-budget") { Description = "Also time the plan for this RAM budget, in the same run: the two plans in turn, five frames at a time, which goes first alternating (e.g. --ram-budget 1048576 --vs-ram-budget 2097152)" };
        var cmd = new Command("bench", "Median latency and frames/s of the runtime on sample frames, optionally against ONNX Runtime fp32 with the same thread count, or against the plan for another RAM budget")
            { model, threads, inFlight, frames, vsOrt, json, fromFile, budget, vsBudget };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json));
            int t = pr.GetValue(threads), n = pr.GetValue(frames), f = pr.GetValue(inFlight);
            CommandSupport.WarnIfMoreThreadsThanProcessors(t * f);
            var report = Benchmark.Run(pr.GetValue(model)!, t, n, EdgeResNet.Tools.RepoPaths.SampleImages(), pr.GetValue(vsOrt) ? CommandSupport.LoadNetwork() : null, f, pr.GetValue(fromFile),
                pr.GetValue(budget), pr.GetValue(vsBudget));
            var (rtMs, rtFps, ortMs, ortFps) = (report.RuntimeMs, report.RuntimeFps, report.OrtMs, report.OrtFps);
            string how = f == 1 ? $"one frame across {t} thread(s)" : $"{f} frames in flight, each across {t} thread(s)";
            Console.WriteLine($"runtime ({report.Kernel}): median {rtMs:F1} ms per frame, {rtFps:F2} frames/s, {how}; plan RAM {report.RuntimeRamBytes:N0} B");
            if (report.BaselineMs != null)
                Console.WriteLine($"the plan for --vs-ram-budget {report.BaselineRamBudgetBytes:N0} ({report.BaselineRamBytes:N0} B): median {report.BaselineMs:F1} ms per frame; latency ratio {report.BaselineRatio:F3}");
            if (ortMs != null) Console.WriteLine($"ONNX Runtime fp32: median {ortMs:F1} ms per frame, {ortFps:F2} frames/s with {t} intra-op thread(s); runtime/ORT latency ratio {report.Ratio:F2}");
            if (pr.GetValue(json) is string j) CommandSupport.WriteJsonAtomically(j, report);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
