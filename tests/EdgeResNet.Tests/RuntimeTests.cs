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
    /// <param name="size">Input side: 32 by default; a larger input makes the tensors, not the weight buffers, the bulk of the RAM (streamed segments).</param>
    /// <param name="stages">2, or 3: a segment that can run in two phases.</param>
    internal static (QModel Model, byte[] Image, float[][] Inputs) MiniPacked(QuantOptions opt, int seed = 3, int size = 32, int stages = 2)
    {
        var model = MiniResNet.Quantized(opt, seed, out var inputs, size: size, stages: stages);
        return (model, FlashImageWriter.ToBytes(model), inputs);
    }

    [TestMethod]
    [DataRow(10, BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false, 1)]
    [DataRow(10, BnScheme.Folded, ExecutionPlan.DefaultRamBudgetBytes, false, 1)]
    [DataRow(12, BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false, 1)]  // weights over 10 bits: split planes, 64-bit accumulation
    [DataRow(10, BnScheme.Separate, 0L, false, 1)]        // no RAM to spare: the smallest plan, one-row bands everywhere
    [DataRow(8, BnScheme.Folded, 0L, true, 1)]            // the reference kernel (the netstandard path)
    [DataRow(10, BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false, 2)]  // one frame across threads
    [DataRow(12, BnScheme.Folded, 0L, false, 3)]
    [DataRow(8, BnScheme.Separate, 0L, true, 2)]
    public void RuntimeLogitsEqualTheSimulatorBitForBit(int bits, BnScheme scheme, long ramBudget, bool referenceKernels, int threads) =>
        AssertRuntimeEqualsSimulator(new QuantOptions(bits, 16, scheme), ramBudget, referenceKernels, threads);

    [TestMethod]
    [DataRow(ExecutionPlan.DefaultRamBudgetBytes, false, 1)]
    [DataRow(0L, false, 1)]
    [DataRow(0L, true, 2)]
    public void EightBitActivationImagesRunBitExactWithTheSimulator(long ramBudget, bool referenceKernels, int threads) =>
        AssertRuntimeEqualsSimulator(new QuantOptions(10, 8, BnScheme.Separate), ramBudget, referenceKernels, threads);

    [TestMethod]
    public void EightBitImagesKeepTheirTensorsInBytesAndNeedLessRam()
    {
        QModel Mini(int activationBits) => FlashImage.Open(new MemoryFlash(MiniPacked(new QuantOptions(10, activationBits, BnScheme.Separate), size: 96, stages: 3).Image)).Model;
        QModel m8 = Mini(8), m16 = Mini(16);
        var (p8, p16) = (ExecutionPlan.Smallest(m8), ExecutionPlan.Smallest(m16));
        Assert.IsTrue(p8.ByteTensors, "8-bit activations: the tensors between layers take a byte a value");
        Assert.IsFalse(p16.ByteTensors, "16-bit activations stay int16");
        Assert.IsGreaterThanOrEqualTo(0, p8.SegmentEnd, "the smallest plan streams a segment");
        var (pool, res2a) = (p8.Layers[p8.Steps[0].Pool], p8.Steps[1]);
        var (a, b) = (p8.Layers[res2a.A], p8.Layers[res2a.B]);
        Assert.AreEqual(pool.OutW * pool.OutC, 2 * p8.Windows[1].RowShorts, "the stem's output window: a byte a value, two to an arena value");
        Assert.AreEqual(p8.Layers[p8.Steps[p8.SegmentEnd + 1].A].InSize, 2 * p8.SinkShorts, "and so is the sink");
        Assert.AreEqual((res2a.BandRows + 2) * a.OutW * a.OutC, 2 * res2a.RingShorts, "and the ring of A rows the 3x3 reads");
        Assert.AreEqual(res2a.BandRows * b.OutW * b.OutC, 2 * res2a.BandShorts, "and the 3x3's band");
        Assert.IsLessThan(p16.RamBytes, p8.RamBytes, $"the smallest 8-bit plan needs less RAM: {p8.RamBytes} B against {p16.RamBytes} B");
        foreach (var budget in new[] { p16.RamBytes, p16.RamBytes + 16384 })
        {
            var (b8, b16) = (new ExecutionPlan(m8, ramBudgetBytes: budget), new ExecutionPlan(m16, ramBudgetBytes: budget));
            Assert.IsLessThanOrEqualTo(b16.EstimatedFlashBytes(), b8.EstimatedFlashBytes(), $"at {budget} B the 8-bit plan reads no more flash");
        }
        // an Add without a ReLU whose output needs the 9th bit is signed 9-bit: no byte holds it
        var add = m8.Layers.First(l => l.Op == QOp.Add && l.OutBits == 9);
        add.Relu = false;
        Assert.IsFalse(ExecutionPlan.StoresBytes(m8), "a 9-bit tensor that can be negative stays int16");
    }

    [TestMethod]
    [DataRow(BnScheme.Separate, ExecutionPlan.DefaultRamBudgetBytes, false)]
    [DataRow(BnScheme.Folded, ExecutionPlan.DefaultRamBudgetBytes, false)]
    [DataRow(BnScheme.Separate, 0L, false)]
    [DataRow(BnScheme.Folded, 0L, true)]
    public void AMixedWidthPerChannelImageRunsBitExactWithTheSimulator(BnScheme scheme, long ramBudget, bool referenceKernels)
    {
        AssertMixed(scheme, ramBudget, referenceKernels, 1);
        AssertMixed(scheme, ramBudget, referenceKernels, 2);
    }

    static void AssertMixed(BnScheme scheme, long ramBudget, bool referenceKernels, int threads)
    {
        var options = MiniResNet.MixedOptions(scheme);
        var widths = MiniPacked(options).Model.Layers.Where(l => l.Op == QOp.Conv).Select(l => l.WeightBits).ToList();
        CollectionAssert.AreEqual(options.LayerBits!.Bits.Values.ToList(), widths, "every conv has the width it was given");
        Assert.IsTrue(widths.Contains(2) && widths.Contains(16) && widths.Any(b => b is > 10 and < 16), "2 bits, 16 bits and a split width in between");
        AssertRuntimeEqualsSimulator(options, ramBudget, referenceKernels, threads);
    }

    static void AssertRuntimeEqualsSimulator(QuantOptions options, long ramBudget, bool referenceKernels, int threads)
    {
        var (model, bytes, inputs) = MiniPacked(options);
        var sim = new IntegerSimulator(model);
        var image = FlashImage.Open(new MemoryFlash(bytes));
        var plan = ramBudget == 0 ? ExecutionPlan.Smallest(image.Model, referenceKernels, threads)
            : new ExecutionPlan(image.Model, ramBudgetBytes: ExecutionPlan.DefaultBudget(image.Model, threads), referenceKernels: referenceKernels, threads: threads);
        if (ramBudget == 0) Assert.IsTrue(plan.Steps.Any(s => s.Bands > 1), "a tiny budget must force several bands");
        using var engine = EngineHeap.New(image, plan);
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
                foreach (int threads in new[] { 1, 2 })
                {
                    var image = FlashImage.Open(flash);
                    using var engine = new InferenceEngine(image, new ExecutionPlan(image.Model, ramBudgetBytes: ExecutionPlan.DefaultBudget(image.Model, threads), threads: threads));
                    var q = Quantizer.QuantizeInput(inputs[0], model);
                    engine.Run(q); // warm-up: JIT and first-touch
                    // Every thread's allocations, the engine's own threads included. That count is process-wide, so a test
                    // running alongside can add to one frame's; a frame that allocates does so every time, so the least of five counts.
                    long allocated = long.MaxValue;
                    for (int i = 0; i < 5 && allocated > 0; i++)
                    {
                        long before = GC.GetTotalAllocatedBytes(precise: true);
                        engine.Run(q);
                        allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
                    }
                    Assert.AreEqual(0L, allocated, $"{flash.GetType().Name}, {threads} thread(s): every frame allocated, at least {allocated} bytes");
                }
        }
        finally { File.Delete(path); }
    }

    /// <summary>A flash that fails after some reads, as a chip that stops answering does.</summary>
    sealed class FailingFlash(IFlash inner, int goodReads) : IFlash
    {
        int _reads;
        public long Length => inner.Length;
        public void Read(long offset, Span<byte> destination)
        {
            if (Interlocked.Increment(ref _reads) > goodReads) throw new FlashImageException($"read at offset {offset} failed (test)");
            inner.Read(offset, destination);
        }
    }

    [TestMethod]
    public void AFlashErrorOnAnyThreadReachesTheCallerAsItselfAndLeavesNoThreadStuck()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions(10, 16, BnScheme.Separate));
        var q = Quantizer.QuantizeInput(inputs[0], model);
        var image = FlashImage.Open(new MemoryFlash(bytes));
        using var good = new InferenceEngine(image, new ExecutionPlan(image.Model, ramBudgetBytes: ExecutionPlan.DefaultBudget(image.Model, 2), threads: 2));
        var expected = good.Run(q).ToArray();
        var counting = new CountingFlash(new MemoryFlash(bytes));
        var counted = FlashImage.Open(counting, verifySections: false);
        long openReads = counting.Reads;
        using (var once = new InferenceEngine(counted, new ExecutionPlan(counted.Model, ramBudgetBytes: ExecutionPlan.DefaultBudget(counted.Model, 2), threads: 2))) once.Run(q);
        int goodReads = (int)(openReads + (counting.Reads - openReads) / 2); // fail halfway through the frame
        var failing = FlashImage.Open(new FailingFlash(new MemoryFlash(bytes), goodReads), verifySections: false);
        using var engine = new InferenceEngine(failing, new ExecutionPlan(failing.Model, ramBudgetBytes: ExecutionPlan.DefaultBudget(failing.Model, 2), threads: 2));
        var e = Assert.ThrowsExactly<FlashImageException>(() => engine.Run(q));
        StringAssert.Contains(e.Message, "failed (test)");
        Assert.ThrowsExactly<FlashImageException>(() => engine.Run(q), "the next frame fails the same way: the crew is not stuck");
        CollectionAssert.AreEqual(expected, good.Run(q), "another engine is unaffected");
    }

    [TestMethod]
    [DataRow(false, 1, 2, 16)]
    [DataRow(true, 1, 2, 16)]   // the reference kernels (the netstandard path)
    [DataRow(false, 2, 2, 16)]
    [DataRow(false, 1, 3, 16)]  // three stages: segments in two phases
    [DataRow(true, 1, 3, 16)]
    [DataRow(false, 2, 3, 16)]
    [DataRow(false, 1, 3, 8)]   // 8-bit activations: the tensors kept in bytes
    [DataRow(true, 1, 3, 8)]
    [DataRow(false, 2, 3, 8)]
    public void StreamedSegmentPlansRunBitExactWithTheSimulator(bool referenceKernels, int threads, int stages, int activationBits)
    {
        var (model, bytes, inputs) = MiniPacked(new QuantOptions(10, activationBits, BnScheme.Separate), size: 96, stages: stages);
        var sim = new IntegerSimulator(model);
        var counting = new CountingFlash(new MemoryFlash(bytes));
        var image = FlashImage.Open(counting);
        var smallest = ExecutionPlan.Smallest(image.Model, referenceKernels, threads);
        Assert.IsGreaterThanOrEqualTo(0, smallest.SegmentEnd, "the smallest plan streams a segment");
        var seen = new HashSet<string>();
        int twoPhases = 0, resident = 0;
        for (int i = 0; i <= 16; i++)
        {
            long budget = smallest.RamBytes + 2048L * i; // taller bands, step by step
            var plan = new ExecutionPlan(image.Model, ramBudgetBytes: budget, referenceKernels: referenceKernels, threads: threads);
            Assert.IsLessThanOrEqualTo(budget, plan.RamBytes);
            if (plan.SegmentEnd < 0 || !seen.Add(plan.Describe())) continue;
            plan.ProveSegment();
            if (plan.SegmentSplit >= 0) twoPhases++;
            if (plan.Steps.Any(s => s.Resident)) resident++;
            using var engine = EngineHeap.New(image, plan);
            foreach (var x in inputs.Take(2))
            {
                var q = Quantizer.QuantizeInput(x, model);
                CollectionAssert.AreEqual(sim.Run(q), engine.Run(q), $"budget {budget}: {plan.Describe()}");
                // per layer, the flash bytes of a frame: a resident step's conv reads its weights once and its BN tables each band
                var layerBytes = new long[plan.Layers.Length];
                long last = counting.BytesRead;
                engine.RunProfiled(q, layer => { layerBytes[layer] += counting.BytesRead - last; last = counting.BytesRead; });
                CollectionAssert.AreEqual(sim.Run(q), engine.Logits, "a profiled frame gives the same logits");
                foreach (var step in plan.Steps.Where(s => s.Resident))
                    foreach (int c in new[] { step.A, step.B, step.C, step.P }.Where(c => c >= 0))
                    {
                        var l = plan.Layers[c];
                        Assert.IsTrue(layerBytes[c] >= l.WeightsSize + l.BnSize && layerBytes[c] <= l.WeightsSize + step.Bands * l.BnSize,
                            $"{l.Name} read {layerBytes[c]} B in a frame: weights {l.WeightsSize} B once, BN {l.BnSize} B each of {step.Bands} bands");
                    }
            }
        }
        Assert.IsGreaterThanOrEqualTo(4, seen.Count, "several segment plans above the smallest");
        Assert.IsGreaterThanOrEqualTo(1, resident, "a plan that keeps a step's weights whole among them: " + string.Join(" | ", seen));
        if (stages == 3) Assert.IsGreaterThanOrEqualTo(1, twoPhases, "a segment in two phases among them: " + string.Join(" | ", seen));
    }

    [TestMethod]
    [DataRow(2)]
    [DataRow(3)]
    public void TheSegmentProofCatchesAWindowOneRowShort(int stages)
    {
        var (model, _, _) = MiniPacked(new QuantOptions(10, 16, BnScheme.Separate), size: 96, stages: stages);
        var plan = ExecutionPlan.Smallest(model);
        Assert.IsGreaterThanOrEqualTo(0, plan.SegmentEnd, "the smallest plan streams a segment");
        plan.ProveSegment();
        for (int w = 0; w < plan.Windows.Length; w++)
        {
            plan.Windows[w].Rows--;
            Assert.ThrowsExactly<PlanException>(plan.ProveSegment, $"window {w} one row short");
            plan.Windows[w].Rows++;
        }
    }

    [TestMethod]
    public void TheSegmentProofCatchesASinkOverRowsStillToBeRead()
    {
        var (model, _, _) = MiniPacked(new QuantOptions(10, 16, BnScheme.Separate), size: 96, stages: 3);
        ExecutionPlan? plan = null;
        for (long budget = ExecutionPlan.Smallest(model).RamBytes; plan == null || plan.SegmentSplit < 0; budget += 1024)
        {
            Assert.IsLessThan(ExecutionPlan.DefaultRamBudgetBytes, budget, "no plan in two phases");
            plan = new ExecutionPlan(model, ramBudgetBytes: budget);
        }
        plan.ProveSegment();
        // the second phase writes its sink over the first phase's output as it reads it; moved up to that output's last row,
        // its first row would overwrite a row still to be read
        var whole = plan.Windows.Single(w => w.Whole);
        Assert.IsGreaterThan(1, plan.Steps[plan.SegmentSplit].Bands, "the second phase reads the first's output in several bands");
        plan.SinkOffset += whole.Shorts - whole.RowShorts;
        Assert.ThrowsExactly<PlanException>(plan.ProveSegment);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void FlashIsReadOnceWhenBandsAreWhole(bool mapped)
    {
        var (model, bytes, inputs) = MiniPacked(new QuantOptions(10, 16, BnScheme.Separate));
        // CountingFlash.Of keeps the memory mapped: the engine unpacks from it, and each mapped range counts as a read
        var counting = mapped ? CountingFlash.Of(new MemoryFlash(bytes)) : new CountingFlash(new MemoryFlash(bytes));
        Assert.AreEqual(mapped, counting is IMappedFlash);
        var image = FlashImage.Open(counting, verifySections: false);
        var plan = new ExecutionPlan(image.Model);
        Assert.IsTrue(plan.Steps.All(s => s.Bands == 1), "the mini network fits in one band per step");
        using var engine = new InferenceEngine(image, plan);
        long before = counting.BytesRead;
        var q = Quantizer.QuantizeInput(inputs[0], image.Model);
        var logits = engine.Run(q).ToArray();
        long sections = image.Model.Layers.Where(l => l.Op == QOp.Conv).Sum(l => l.WeightsSize + l.BnSize);
        Assert.AreEqual(sections, counting.BytesRead - before, "every weight and BN byte exactly once per frame");
        CollectionAssert.AreEqual(new IntegerSimulator(model).Run(q), logits, "the same logits as the simulator");
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
