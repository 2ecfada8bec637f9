using EdgeResNet.Runtime.Engine;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Reports;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class ProfileTests
{
    /// <summary>The per-layer profile accounts for the whole frame: its flash bytes add up to the footprint's measured frame, every conv reads its weights, the shares to 1.</summary>
    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void TheLayerProfileAddsUpToTheFrame(int threads)
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        var profile = LayerProfile.Run(image.Path, frames: 3, imagesDir: null, threads);
        Assert.HasCount(model.Layers.Length, profile.Layers);
        var footprint = Footprint.Measure(image.Path, new short[model.InputSize], null, [], threads: threads); // the default budget, as the profile plans
        Assert.AreEqual(threads, footprint.Threads);
        Assert.AreEqual(ExecutionPlan.DefaultRamBudgetBytes, Footprint.Measure(image.Path, new short[model.InputSize], ExecutionPlan.DefaultRamBudgetBytes, [], threads: threads).RamBudgetBytes,
            "a budget given is the budget planned for, whatever the threads");
        StringAssert.Contains(LayerProfile.Markdown(profile, "cmd"), "| 3x3 convs |");
        Assert.AreEqual(footprint.FlashBytesPerFrame, profile.FlashBytesPerFrame);
        Assert.AreEqual(profile.FlashBytesPerFrame, profile.Layers.Sum(l => l.FlashBytes));
        foreach (var l in profile.Layers)
        {
            Assert.IsGreaterThanOrEqualTo(0.0, l.Ms, l.Name);
            if (model.Layers[l.Index].Op == EdgeResNet.Runtime.QOp.Conv) Assert.IsGreaterThanOrEqualTo(model.Layers[l.Index].WeightsSize, l.FlashBytes, $"{l.Name} reads its weights at least once");
            else Assert.AreEqual(0, l.FlashBytes, $"{l.Name} reads no flash");
        }
        Assert.AreEqual(1.0, profile.Layers.Sum(l => l.Share), 0.01);
        Assert.AreEqual(model.Macs, profile.Layers.Sum(l => l.Macs));
    }

    /// <summary>The RAM / flash curve is measured plan by plan, Pareto (more RAM, fewer bytes), from the smallest plan to every weight read once.</summary>
    [TestMethod]
    public void TheRamFlashCurveRunsFromTheSmallestPlanToEveryWeightReadOnce()
    {
        var (model, bytes, _) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        long smallest = ExecutionPlan.Smallest(model).RamBytes;
        var curve = RamFlashTradeoff.Run(image.Path, maxBudgetBytes: smallest * 3, steps: 8);
        Assert.AreEqual(smallest, curve.Pareto[0].RuntimeRamBytes, "the curve starts at the smallest plan");
        for (int i = 1; i < curve.Pareto.Count; i++)
        {
            Assert.IsGreaterThan(curve.Pareto[i - 1].RuntimeRamBytes, curve.Pareto[i].RuntimeRamBytes);
            Assert.IsLessThan(curve.Pareto[i - 1].FlashBytesPerFrame, curve.Pareto[i].FlashBytesPerFrame);
        }
        foreach (var p in curve.Pareto)
        {
            Assert.IsLessThanOrEqualTo(p.RamBudgetBytes, p.RuntimeRamBytes, "a plan stays within its budget");
            var measured = Footprint.Measure(image.Path, new short[model.InputSize], p.RamBudgetBytes, []);
            Assert.AreEqual(measured.FlashBytesPerFrame, p.FlashBytesPerFrame, "the footprint of that budget reads the same bytes");
        }
        long sections = model.Layers.Where(l => l.Op == EdgeResNet.Runtime.QOp.Conv).Sum(l => l.WeightsSize + l.BnSize);
        Assert.AreEqual(sections, curve.Pareto[^1].FlashBytesPerFrame, "with room for whole bands every weight is read once");
        Assert.IsGreaterThan(1, curve.Pareto.Count, "a tight budget re-reads weights: the curve has more than one point");
        var e = Assert.ThrowsExactly<EdgeResNet.Common.UsageException>(() => RamFlashTradeoff.Run(image.Path, maxBudgetBytes: smallest - 1));
        StringAssert.Contains(e.Message, "below the smallest plan");
    }
}
