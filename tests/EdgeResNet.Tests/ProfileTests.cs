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
        var footprint = Footprint.Measure(image.Path, new short[model.InputSize], ExecutionPlan.DefaultRamBudgetBytes, [], threads: threads);
        Assert.AreEqual(threads, footprint.Threads);
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
}
