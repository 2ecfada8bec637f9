using EdgeResNet.Common;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;

namespace EdgeResNet.Tools.Reports;

/// <summary>One plan of the curve: the budget it was made for, the RAM it takes and the flash bytes one frame reads.</summary>
public sealed record TradeoffPoint(long RamBudgetBytes, long RuntimeRamBytes, long FlashBytesPerFrame, double FlashReadRatio, int Bands);

public sealed record TradeoffReport(string Image, string Kernel, long ImageBytes, int Threads, long SmallestRamBytes, long MaxBudgetBytes, int PlansTried,
    IReadOnlyList<TradeoffPoint> Pareto);

/// <summary>
/// Peak RAM against flash bytes read per frame, over the plans the planner makes for budgets from the smallest
/// feasible one up to a maximum: each plan runs one frame on the engine over a counting flash (the bytes are
/// measured, not estimated), and the curve keeps the plans no other beats on both.
/// </summary>
public static class RamFlashTradeoff
{
    public const long DefaultMaxBudgetBytes = 4L << 20;

    /// <param name="steps">Budgets tried, evenly spaced from the smallest plan's RAM to <paramref name="maxBudgetBytes"/>.</param>
    /// <param name="progress">Called with (plans done, plans in all).</param>
    public static TradeoffReport Run(string imagePath, long maxBudgetBytes = DefaultMaxBudgetBytes, int steps = 48, bool referenceKernels = false, int threads = 1,
        Action<int, int>? progress = null)
    {
        if (steps < 2) throw new UsageException("the curve needs at least 2 budgets");
        var counting = CountingFlash.Of(new MemoryFlash(RuntimeClassifier.ReadImage(imagePath)));
        var image = FlashImage.Open(counting);
        var model = image.Model;
        long smallest = ExecutionPlan.Smallest(model, referenceKernels, threads).RamBytes;
        if (maxBudgetBytes < smallest)
            throw new UsageException($"the largest budget, {maxBudgetBytes:N0} B, is below the smallest plan for this image, {smallest:N0} B");
        var points = new List<TradeoffPoint>();
        string kernel = "";
        var zeros = new short[model.InputSize];
        for (int i = 0; i < steps; i++)
        {
            long budget = smallest + (maxBudgetBytes - smallest) * i / (steps - 1);
            var plan = new ExecutionPlan(model, ramBudgetBytes: budget, referenceKernels: referenceKernels, threads: threads);
            if (points.Count > 0 && points[^1].RuntimeRamBytes == plan.RamBytes) { progress?.Invoke(i + 1, steps); continue; } // the same plan again
            using var engine = new InferenceEngine(image, plan);
            kernel = engine.ConvKernel;
            long before = counting.BytesRead;
            engine.Run(zeros); // the flash bytes of a frame do not depend on its pixels
            long bytes = counting.BytesRead - before;
            points.Add(new TradeoffPoint(budget, plan.RamBytes, bytes, (double)bytes / image.ImageSize, plan.Steps.Sum(s => s.Bands)));
            progress?.Invoke(i + 1, steps);
        }
        return new TradeoffReport(Path.GetFileName(imagePath), kernel, image.ImageSize, threads, smallest, maxBudgetBytes, points.Count, Pareto(points));
    }

    /// <summary>The points no other has both less (or equal) RAM and fewer flash bytes than, by RAM.</summary>
    public static List<TradeoffPoint> Pareto(IEnumerable<TradeoffPoint> points)
    {
        var front = new List<TradeoffPoint>();
        foreach (var p in points.OrderBy(p => p.RuntimeRamBytes).ThenBy(p => p.FlashBytesPerFrame))
            if (front.Count == 0 || p.FlashBytesPerFrame < front[^1].FlashBytesPerFrame) front.Add(p);
        return front;
    }

    public static void Plot(TradeoffReport r, string pngPath)
    {
        var plot = new ScottPlot.Plot();
        var s = plot.Add.Scatter(r.Pareto.Select(p => p.RuntimeRamBytes / 1048576.0).ToArray(), r.Pareto.Select(p => p.FlashReadRatio).ToArray());
        s.LegendText = $"Pareto plans ({r.Threads} thread(s))";
        s.MarkerSize = 7;
        var once = plot.Add.HorizontalLine(1.0);
        once.LegendText = "every weight read once";
        once.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Title($"{r.Image}: runtime RAM against flash read per frame ({r.PlansTried} plans)");
        plot.XLabel("runtime RAM (MiB)");
        plot.YLabel("flash bytes read per frame / image bytes");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        AtomicFile.WriteAllBytes(pngPath, plot.GetImageBytes(900, 560, ScottPlot.ImageFormat.Png));
    }
}
