using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class RuntimeTests
{
    internal static (QModel Model, byte[] Image, float[][] Inputs) MiniPacked(QuantOptions opt, int seed = 3)
    {
        var model = MiniResNet.Quantized(opt, seed, out var inputs);
        return (model, FlashImageWriter.ToBytes(model), inputs);
    }

    [TestMethod]
    [DataRow(10, BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false)]
    [DataRow(10, BnScheme.Folded, ExecutionPlan.DefaultRamBudgetBytes, false)]
    [DataRow(12, BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false)]  // weights over 10 bits: split planes, 64-bit accumulation
    [DataRow(10, BnScheme.Separate, 0L, false)]        // no RAM to spare: the smallest plan, one-row bands everywhere
    [DataRow(8, BnScheme.Folded, 0L, true)]            // the reference kernel (the netstandard path)
    public void RuntimeLogitsEqualTheSimulatorBitForBit(int bits, BnScheme scheme, long ramBudget, bool referenceKernels) =>
        AssertRuntimeEqualsSimulator(new QuantOptions(bits, 16, scheme), ramBudget, referenceKernels);

    [TestMethod]
    [DataRow(BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false)]
    [DataRow(BnScheme.Folded, ExecutionPlan.DefaultRamBudgetBytes, false)]
    [DataRow(BnScheme.Separate, 0L, false)]
    [DataRow(BnScheme.Folded, 0L, true)]
    public void AMixedWidthPerChannelImageRunsBitExactWithTheSimulator(BnScheme scheme, long ramBudget, bool referenceKernels)
    {
        var options = MiniResNet.MixedOptions(scheme);
        var widths = MiniPacked(options).Model.Layers.Where(l => l.Op == QOp.Conv).Select(l => l.WeightBits).ToList();
        CollectionAssert.AreEqual(options.LayerBits!.Bits.Values.ToList(), widths, "every conv has the width it was given");
        Assert.IsTrue(widths.Contains(2) && widths.Contains(16) && widths.Any(b => b is > 10 and < 16), "2 bits, 16 bits and a split width in between");
        AssertRuntimeEqualsSimulator(options, ramBudget, referenceKernels);
    }

    static void AssertRuntimeEqualsSimulator(QuantOptions options, long ramBudget, bool referenceKernels)
    {
        var (model, bytes, inputs) = MiniPacked(options);
        var sim = new IntegerSimulator(model);
        var image = FlashImage.Open(new MemoryFlash(bytes));
        var plan = ramBudget == 0 ? ExecutionPlan.Smallest(image.Model, referenceKernels) : new ExecutionPlan(image.Model, ramBudgetBytes: ramBudget, referenceKernels: referenceKernels);
        if (ramBudget == 0) Assert.IsTrue(plan.Steps.Any(s => s.Bands > 1), "a tiny budget must force several bands");
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var engine = new InferenceEngine(image, plan);
        long engineHeap = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        // the plan's RAM figure is what the engine really allocates (plus object headers)
        Assert.IsTrue(engineHeap >= plan.RamBytes && engineHeap <= plan.RamBytes + 4096, $"engine heap {engineHeap} B, plan says {plan.RamBytes} B");
        foreach (var x in inputs)
        {
            var q = Quantizer.QuantizeInput(x, model);
            var expected = sim.Run(q);
            CollectionAssert.AreEqual(expected, engine.Run(q));
            Assert.IsTrue(expected.Distinct().Count() > 1, "logits must vary");
        }
    }

    [TestMethod]
    public void AFrameAllocatesNothing()
    {
        var (model, bytes, inputs) = MiniPacked(new QuantOptions(10, 16, BnScheme.Separate));
        string path = Path.GetTempFileName();
        File.WriteAllBytes(path, bytes);
        try
        {
            using var file = new FileFlash(path);
            foreach (IFlash flash in new IFlash[] { new MemoryFlash(bytes), file })
            {
                var engine = new InferenceEngine(FlashImage.Open(flash));
                var q = Quantizer.QuantizeInput(inputs[0], model);
                q.CopyTo(engine.Input);
                engine.Run(); // warm-up: JIT and first-touch
                long before = GC.GetAllocatedBytesForCurrentThread();
                engine.Run();
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.AreEqual(0L, allocated, $"{flash.GetType().Name}: a frame allocated {allocated} bytes");
            }
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void FlashIsReadOnceWhenBandsAreWhole()
    {
        var (_, bytes, inputs) = MiniPacked(new QuantOptions(10, 16, BnScheme.Separate));
        var counting = new CountingFlash(new MemoryFlash(bytes));
        var image = FlashImage.Open(counting, verifySections: false);
        var plan = new ExecutionPlan(image.Model);
        Assert.IsTrue(plan.Steps.All(s => s.Bands == 1), "the mini network fits in one band per step");
        var engine = new InferenceEngine(image, plan);
        long before = counting.BytesRead;
        engine.Run(Quantizer.QuantizeInput(inputs[0], image.Model));
        long sections = image.Model.Layers.Where(l => l.Op == QOp.Conv).Sum(l => l.WeightsSize + l.BnSize);
        Assert.AreEqual(sections, counting.BytesRead - before, "every weight and BN byte exactly once per frame");
    }

    [TestMethod]
    public void UnsupportedLayerTableIsAClearError()
    {
        var (_, _, model) = QuantizationTests.TinyQuantized(new QuantOptions(10, 16, BnScheme.Separate));
        var e = Assert.ThrowsExactly<PlanException>(() => new ExecutionPlan(model));
        StringAssert.Contains(e.Message, "stem");
    }
}

/// <summary>Bytes in a new file under the temporary folder, deleted with the object.</summary>
sealed class TempFile : IDisposable
{
    public string Path { get; }
    public TempFile(byte[] bytes, string extension = ".img")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"edgeresnet-{Guid.NewGuid():N}{extension}");
        File.WriteAllBytes(Path, bytes);
    }
    public void Dispose() => File.Delete(Path);
}

/// <summary>A new folder under the temporary folder, deleted with everything in it.</summary>
sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("edgeresnet-").FullName;
    public void Dispose() { if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true); }
}
