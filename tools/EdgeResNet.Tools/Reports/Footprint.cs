using EdgeResNet.Common;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Evaluation;
using System.Text.Json;
using EdgeResNet.Runtime.Input;
using System.Diagnostics;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Tools.Reports;

/// <summary>
/// A target board: how much external flash holds the image and how much RAM the runtime may use.
/// The boards are data, in Reports/boards.json (embedded): adding a board is adding an entry there.
/// </summary>
public sealed record BoardProfile(string Name, string Description, long FlashBytes, long RamBytes)
{
    public static readonly BoardProfile[] All = Load();

    static BoardProfile[] Load()
    {
        using var stream = typeof(BoardProfile).Assembly.GetManifestResourceStream("EdgeResNet.Tools.Reports.boards.json")
            ?? throw new InvalidOperationException("boards.json is not embedded in EdgeResNet.Tools");
        var boards = JsonSerializer.Deserialize<BoardProfile[]>(stream, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!;
        foreach (var b in boards)
            if (string.IsNullOrWhiteSpace(b.Name) || b.FlashBytes <= 0 || b.RamBytes <= 0)
                throw new InvalidDataException($"boards.json: board '{b.Name}' needs a name and positive flash_bytes and ram_bytes");
        return boards;
    }

    public static BoardProfile Find(string name) => All.FirstOrDefault(b => b.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
        ?? throw new UsageException($"unknown board '{name}'; known boards: {string.Join(", ", All.Select(b => b.Name))}");
}

public sealed record BoardFit(string Board, string Description, bool Fits, string Limit)
{
    /// <summary>Where the plan of the report does not fit the board's RAM: the plan for the board's RAM, if any (its RAM, and the flash bytes a frame read with it).</summary>
    public long? BoardPlanRamBytes { get; init; }
    public double? BoardPlanFlashReadRatio { get; init; }
}

/// <summary>One step of the plan: its bands, the tensor area its input and output use, its scratch, and the flash bytes it read in the measured frame.</summary>
public sealed record StepFootprint(string Name, string Kind, int Bands, int BandRows, long TensorBytes, long ScratchBytes, long FlashBytes);

public sealed record FootprintReport(
    string Image, string Kernel, long ImageBytes, long Macs, long RamBudgetBytes,
    long TensorAreaBytes, long ScratchBytes, long Im2ColBytes, long ArenaBytes, long WeightBufferBytes, long RuntimeRamBytes,
    long FlashBytesPerFrame, double FlashReadRatio, long FlashReadsPerFrame, string Schedule,
    long MeasuredEngineHeapBytes, long MeasuredAllocatedPerFrameBytes, long MeasuredPeakWorkingSetBytes, double MeasuredFrameMs,
    IReadOnlyList<BoardFit> Boards)
{
    /// <summary>Arena bytes the streamed segment reaches (its windows, rings, band scratch and sink; 0 without one): the arena holds the larger of it and the tensor area + scratch.</summary>
    public long SegmentBytes { get; init; }
    /// <summary>Threads one frame runs on; the weight buffers and im2col rows are per thread.</summary>
    public int Threads { get; init; } = 1;
    /// <summary>With a camera frame size: the integer preprocessing's buffers and the raw frame buffer.</summary>
    public long? PreprocessingBytes { get; init; }
    public long? FrameBufferBytes { get; init; }
    /// <summary>What the board app needs in all: runtime + preprocessing + frame buffer (runtime alone without a frame size); the board fit uses it.</summary>
    public long DeviceRamBytes { get; init; }
    /// <summary>The plan step by step (their flash bytes add up to <see cref="FlashBytesPerFrame"/>).</summary>
    public IReadOnlyList<StepFootprint> Steps { get; init; } = [];
    /// <summary>What the runtime RAM holds besides the arena's values and the weight buffers: the arena's array header, the logits, the bookkeeping and the engine's objects (<see cref="ExecutionPlan.EngineStateBytes"/>).</summary>
    public long EngineStateBytes => RuntimeRamBytes - ArenaBytes - WeightBufferBytes;
}

/// <summary>A camera frame the board app preprocesses: its size and sensor format.</summary>
public sealed record CameraFrame(int Width, int Height, PixelFormat Format)
{
    public long BufferBytes => (long)Frame.MinStride(Width, Format) * Height;
    public override string ToString() => $"{Width}x{Height} {Format}";
}

/// <summary>
/// What the runtime needs, from the plan (arena, buffers, flash reads) and from a real run on
/// this machine (engine heap, bytes allocated in a frame, process peak working set).
/// </summary>
public static class Footprint
{
    /// <summary>One quantised sample frame for the measured run: the first readable photo of <paramref name="imagesDir"/> (evaluation split first), or a mean-valued frame without one.</summary>
    public static short[] SampleInput(string imagePath, string? imagesDir)
    {
        using var flash = new FileFlash(imagePath);
        var model = FlashImage.Open(flash, verifySections: false).Model;
        var candidates = imagesDir == null ? [] : Dataset.Load(imagesDir, Split.Evaluation).Concat(Dataset.Load(imagesDir, Split.Calibration)).Take(10);
        foreach (var photo in candidates)
        {
            try { return Quantizer.QuantizeInput(CaffePreprocessing.Run(RgbImage.Load(photo.Path)), model); }
            catch (EdgeResNet.Common.Imaging.ImageDecodeException) { } // the sample frame only drives the measured run: take the next photo
        }
        return Quantizer.QuantizeInput(new float[model.InputSize], model);
    }

    /// <param name="referenceKernels">Plan and run as a board without the SIMD kernel does (Mono, ARM): no im2col buffer, slow frame.</param>
    /// <param name="camera">With a frame size: the board app's preprocessing and frame buffer count too, also in the board fit.</param>
    /// <param name="ramBudgetBytes">The plan's RAM budget; null: <see cref="ExecutionPlan.DefaultBudget"/> for <paramref name="threads"/> (2 MiB for one).</param>
    /// <param name="threads">Threads one frame runs on.</param>
    public static FootprintReport Measure(string imagePath, short[] input, long? ramBudgetBytes, IEnumerable<BoardProfile> boards, bool referenceKernels = false,
        CameraFrame? camera = null, int threads = 1)
    {
        if (threads < 1) throw new UsageException("--threads must be at least 1");
        using var file = new FileFlash(imagePath);
        var counting = CountingFlash.Of(file);
        var image = FlashImage.Open(counting);
        var plan = RuntimeClassifier.PlanFor(image.Model, ramBudgetBytes, threads, referenceKernels);
        long budget = plan.RamBudgetBytes;
        long heapBefore = GC.GetAllocatedBytesForCurrentThread();
        using var engine = new InferenceEngine(image, plan);
        long heapEngine = GC.GetAllocatedBytesForCurrentThread() - heapBefore; // every buffer the engine holds
        engine.Run(input); // first frame: JIT
        // The per-step counter is made before the allocation count starts: the frame itself allocates nothing.
        var stepOf = plan.StepOfLayer();
        var stepFlash = new long[plan.Steps.Length];
        long last = counting.BytesRead;
        Action<int> afterLayer = layer => { stepFlash[stepOf[layer]] += counting.BytesRead - last; last = counting.BytesRead; };
        // with several threads, the allocations of all of them (the engine's own threads included)
        Func<long> allocatedSoFar = threads == 1 ? GC.GetAllocatedBytesForCurrentThread : () => GC.GetTotalAllocatedBytes(precise: true);
        long readBefore = counting.BytesRead, readsBefore = counting.Reads, allocBefore = allocatedSoFar();
        long start = Stopwatch.GetTimestamp();
        engine.RunProfiled(input, afterLayer);
        var elapsed = Stopwatch.GetElapsedTime(start);
        long allocated = allocatedSoFar() - allocBefore;
        long flashPerFrame = counting.BytesRead - readBefore, readsPerFrame = counting.Reads - readsBefore; // before a board's own plan reads the same flash
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long? preprocessing = camera == null ? null : FramePreprocessor.For(image.Model, camera.Width, camera.Height).RamBytes;
        long ram = engine.RamBytes + (preprocessing ?? 0) + (camera?.BufferBytes ?? 0);
        string what = camera == null ? "runtime RAM" : $"runtime + {camera} frame RAM";
        long deviceExtra = (preprocessing ?? 0) + (camera?.BufferBytes ?? 0);
        var fits = boards.Select(b =>
        {
            bool flashOk = image.ImageSize <= b.FlashBytes, ramOk = ram <= b.RamBytes;
            if (!ramOk && BoardPlan(image, counting, input, b.RamBytes - deviceExtra, referenceKernels, threads) is var (boardRam, boardFlash))
            {
                long boardTotal = boardRam + deviceExtra;
                string how = $"with the plan for its RAM ({boardRam:N0} B runtime, flash reads {(double)boardFlash / image.ImageSize:F3} x the image)";
                return new BoardFit(b.Name, b.Description, flashOk, flashOk
                    ? $"fits {how}: image uses {100.0 * image.ImageSize / b.FlashBytes:F0}% of flash, {what} {100.0 * boardTotal / b.RamBytes:F1}% of RAM"
                    : $"flash: the image is {image.ImageSize:N0} B, the board has {b.FlashBytes:N0} B")
                { BoardPlanRamBytes = boardRam, BoardPlanFlashReadRatio = (double)boardFlash / image.ImageSize };
            }
            string limit = flashOk && ramOk
                ? $"fits: image uses {100.0 * image.ImageSize / b.FlashBytes:F0}% of flash, {what} {100.0 * ram / b.RamBytes:F1}% of RAM"
                : !ramOk ? $"RAM: the {what} needs {ram:N0} B, the board has {b.RamBytes:N0} B" + (flashOk ? "" : "; and flash")
                : $"flash: the image is {image.ImageSize:N0} B, the board has {b.FlashBytes:N0} B";
            return new BoardFit(b.Name, b.Description, flashOk && ramOk, limit);
        }).ToList();
        return new FootprintReport(Path.GetFileName(imagePath), engine.ConvKernel, image.ImageSize, image.Model.Macs, budget,
            2L * plan.TensorAreaShorts, 2L * plan.ScratchShorts, 2L * plan.Im2ColShorts, 2L * plan.ArenaShorts, plan.WeightBufferBytes, engine.RamBytes,
            flashPerFrame, (double)flashPerFrame / image.ImageSize, readsPerFrame, plan.Describe(),
            heapEngine, allocated, process.PeakWorkingSet64, elapsed.TotalMilliseconds, fits)
        {
            PreprocessingBytes = preprocessing,
            SegmentBytes = 2L * plan.SegmentShorts,
            Threads = threads,
            Steps = plan.Steps.Select((s, i) => new StepFootprint(plan.StepName(s), s.Kind.ToString(), s.Bands, s.BandRows, 2L * plan.TensorsEnd(s), 2L * s.ScratchTotal,
                stepFlash[i])).ToList(),
            FrameBufferBytes = camera?.BufferBytes,
            DeviceRamBytes = ram,
        };
    }

    /// <summary>The plan for a board's RAM (null if none fits it) and the flash bytes one frame reads with it, run over the counting flash.</summary>
    static (long RamBytes, long FlashBytes)? BoardPlan(FlashImage image, CountingFlash counting, short[] input, long ramBytes, bool referenceKernels, int threads)
    {
        ExecutionPlan plan;
        try { plan = new ExecutionPlan(image.Model, ramBudgetBytes: ramBytes, referenceKernels: referenceKernels, threads: threads); }
        catch (PlanException e) when (e.IsOverBudget) { return null; }
        using var engine = new InferenceEngine(image, plan);
        long before = counting.BytesRead;
        engine.Run(input);
        return (plan.RamBytes, counting.BytesRead - before);
    }
}
