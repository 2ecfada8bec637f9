using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Kernels;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx;
using EdgeResNet.Tools.Weights;

namespace EdgeResNet.Tests;

/// <summary>
/// Tests on the real ResNet-50 (weights from the cache; .ci/run fetches them first). Where the
/// weights cannot be had, they are inconclusive with the reason, never silently passed.
/// </summary>
[TestClass]
public sealed class RealModelTests
{
    /// <summary>The imported ResNet-50, loaded once for every test class that needs it.</summary>
    static readonly Lazy<(Network? Net, string? Unavailable)> Loaded = new(() =>
    {
        try { return (TfjsImporter.Load(WeightsCache.Default().Ensure(verifyHashes: false)), null); }
        catch (WeightsException e) { return (null, e.Message); }
    });

    internal static Network Net()
    {
        var (net, unavailable) = Loaded.Value;
        if (net == null) Assert.Inconclusive($"ResNet-50 weights unavailable: {unavailable}");
        return net!;
    }

    [TestMethod]
    public void ImportedResNet50HasTheExpectedStructure()
    {
        var net = Net();
        Assert.AreEqual(25_636_712, net.WeightCount);
        Assert.AreEqual(53, net.Layers.Count(l => l.Kind == LayerKind.Conv2D));
        Assert.AreEqual(53, net.Layers.Count(l => l.Kind == LayerKind.BatchNorm));
        Assert.AreEqual(16, net.Layers.Count(l => l.Kind == LayerKind.Add));
        Assert.AreEqual(1000, net.Classes);
        Assert.AreEqual("7x7x2048", net.ByName["activation_48"].OutShape.ToString());
    }

    [TestMethod]
    public void OnnxRuntimeAgreesWithTheFloatReferenceOn20Images()
    {
        var net = Net();
        var images = Dataset.Load(SampleImages.DirOrInconclusive(), Split.All).Where((_, i) => i % 50 == 0).ToList();
        Assert.HasCount(20, images);
        var result = OrtComparison.Run(new FloatReference(net), images, threads: Environment.ProcessorCount);
        Console.WriteLine($"ORT vs float reference: {result}");
        Assert.AreEqual(20, result.Top1Agree);
        Assert.IsLessThan(1e-3, result.MaxAbsLogitDiff);
    }

    /// <summary>
    /// The device runtime (streaming weights, banded tiles, planned arena, SIMD kernels where the
    /// CPU has them) against its independent twin, the integer simulator (whole tensors, reference
    /// kernels only), on 5 sample photos: logits equal bit for bit, for the 10-bit separate image and
    /// a 10-bit folded one. Calibrated on 20 calibration photos to keep the test quick.
    /// </summary>
    static readonly Dictionary<BnScheme, (QModel Model, byte[] Image)> _quantized = [];
    static Calibration? _calibration;

    /// <summary>The real ResNet-50 at 10 bits, calibrated on 20 calibration photos, packed: made once per scheme for all test classes.</summary>
    internal static (QModel Model, byte[] Image) Quantized(BnScheme scheme)
    {
        lock (_quantized)
        {
            if (_quantized.TryGetValue(scheme, out var done)) return done;
            var net = Net();
            _calibration ??= Calibration.Run(new FloatReference(net), Dataset.Load(SampleImages.DirOrInconclusive(), Split.Calibration, 20), Environment.ProcessorCount);
            var model = Quantizer.Quantize(net, _calibration, new QuantOptions(10, 16, scheme));
            return _quantized[scheme] = (model, FlashImageWriter.ToBytes(model));
        }
    }

    /// <summary>
    /// The two-block weight groups the planner puts in the arena (stage 5's 4,608-value 3x3 rows) overlap nothing their step
    /// uses: its input, its output, its ring and band scratch, the im2col rows, nor each other's thread. Checked here from the
    /// steps' own offsets and sizes, on the plans whose photos the bit-exact test runs.
    /// </summary>
    [TestMethod]
    public void ArenaWeightGroupsLieWhereTheirStepHasNothing()
    {
        if (FastConv.WeightChannelBlock == 1) Assert.Inconclusive("this CPU's kernel reads weight rows (block 1): no two-block groups to place");
        var (model, _) = Quantized(BnScheme.Separate);
        int placed = 0;
        foreach (var plan in new[] { new ExecutionPlan(model), new ExecutionPlan(model, ramBudgetBytes: 1 << 20), ExecutionPlan.Smallest(model),
            new ExecutionPlan(model, ramBudgetBytes: ExecutionPlan.DefaultBudget(model, 2), threads: 2) })
            foreach (var s in plan.Steps)
                foreach (int i in new[] { s.A, s.B, s.C, s.P, s.Fc })
                {
                    if (i < 0 || plan.ArenaGroupOffset(i, 0) < 0) continue;
                    Assert.IsFalse(s.Streamed, $"{plan.Layers[i].Name}: a streamed step keeps its groups in the threads' buffers");
                    int size = WeightLayout.Shorts(plan.GroupSize(i), plan.Layers[i].WeightStride, plan.ChannelBlock(i));
                    var used = new List<(int At, int Length, string What)> { (s.RingOffset, s.ScratchTotal, "ring and band scratch"), (plan.Im2ColOffset(0), plan.ArenaShorts - plan.Im2ColOffset(0), "im2col rows") };
                    if (s.Kind == StepKind.Head) used.Add((s.InputOffset, plan.Layers[s.Gap].InSize, "input"));
                    else
                    {
                        // a projection block of one band has read its input (1x1 reduction, projection) before its 3x3 runs
                        if (!(i == s.B && s.P >= 0 && s.Bands == 1)) used.Add((s.InputOffset, plan.Layers[s.A].InSize, "input"));
                        used.Add((s.OutputOffset, plan.Layers[s.C].OutSize, "output"));
                    }
                    int piece = ExecutionPlan.PieceShorts(plan.Layers[i]);
                    for (int t = 0; t < plan.Threads; t++)
                    {
                        int at = plan.ArenaGroupOffset(i, t), packedAt = plan.ArenaPackedOffset(i, t);
                        Assert.AreEqual(plan.ArenaGroupOffset(i, 0) + t * size, at, "the threads' groups lie side by side");
                        if (packedAt >= 0) // a conv the trimmed buffer leaves out: its packed rows after every thread's group
                            Assert.AreEqual(plan.ArenaGroupOffset(i, 0) + plan.Threads * size + t * piece, packedAt, "the threads' packed rows follow their groups");
                        foreach (var (uAt, uLength, what) in used)
                        {
                            Assert.IsTrue(at + size <= uAt || uAt + uLength <= at, $"{plan.Layers[i].Name}, thread {t}: its group [{at}, {at + size}) overlaps the step's {what} [{uAt}, {uAt + uLength})");
                            if (packedAt >= 0)
                                Assert.IsTrue(packedAt + piece <= uAt || uAt + uLength <= packedAt, $"{plan.Layers[i].Name}, thread {t}: its packed rows [{packedAt}, {packedAt + piece}) overlap the step's {what} [{uAt}, {uAt + uLength})");
                        }
                    }
                    placed++;
                }
        Assert.IsGreaterThanOrEqualTo(8, placed, "stage 5's 3x3 convs take their groups in the arena in these plans");
    }

    /// <summary>
    /// Where RAM is tight the planner trims the weight buffer below one block of the widest convs (stage 5's 3x3: 8 channels of
    /// 4,608 values); those convs then read their packed rows and unpack their one block in the arena, beside their step. The
    /// smallest plans of the 16-bit and of the 8-bit image do so, and run bit-exact with the simulator on a photo through a flash
    /// that is read, not mapped (so the packed rows really pass through the arena), on one thread and on two.
    /// </summary>
    [TestMethod]
    public void ATrimmedWeightBufferRunsTheWidestConvsFromTheArena()
    {
        if (FastConv.WeightChannelBlock == 1) Assert.Inconclusive("this CPU's kernel reads weight rows (block 1): no blocks to trim");
        string dir = SampleImages.DirOrInconclusive();
        var (model16, bytes16) = Quantized(BnScheme.Separate);
        var model8 = Quantizer.Quantize(Net(), _calibration!, new QuantOptions(10, 8, BnScheme.Separate));
        var x = CaffePreprocessing.Run(RgbImage.Load(Dataset.Load(dir, Split.Evaluation)[0].Path));
        foreach (var (model, bytes) in new[] { (model16, bytes16), (model8, FlashImageWriter.ToBytes(model8)) })
        {
            var image = FlashImage.Open(new CountingFlash(new MemoryFlash(bytes)));
            var q = Quantizer.QuantizeInput(x, model);
            var expected = new IntegerSimulator(model).Run(q);
            int widestBlock = model.Layers.Where(l => l.Op == QOp.Conv).Max(l => l.WeightStride) * WeightLayout.PieceChannels;
            foreach (int threads in new[] { 1, 2 })
            {
                var plan = ExecutionPlan.Smallest(image.Model, threads: threads);
                string what = $"{(ExecutionPlan.StoresBytes(model) ? 8 : 16)}-bit activations, {threads} thread(s)";
                Assert.IsLessThan(widestBlock, plan.WeightGroupShorts, $"{what}: the smallest plan's buffer is trimmed below one block of the widest conv");
                Assert.IsTrue(Enumerable.Range(0, plan.Layers.Length).Any(i => plan.ArenaPackedOffset(i, 0) >= 0), $"{what}: some conv reads its packed rows in the arena");
                using var engine = EngineHeap.New(image, plan);
                CollectionAssert.AreEqual(expected, engine.Run(q), what);
            }
        }
    }

    [TestMethod]
    [DataRow(BnScheme.Separate)]
    [DataRow(BnScheme.Folded)]
    public void RuntimeIsBitExactWithTheSimulatorOn5Photos(BnScheme scheme)
    {
        string dir = SampleImages.DirOrInconclusive();
        var (model, bytes) = Quantized(scheme);
        var reference = new FloatReference(Net());
        Assert.IsLessThanOrEqualTo(33_000_000, bytes.Length, "the 10-bit image must stay within 33,000,000 bytes");
        var sim = new IntegerSimulator(model);
        var counting = new CountingFlash(new MemoryFlash(bytes));
        var engine = new InferenceEngine(FlashImage.Open(counting));
        Assert.IsLessThanOrEqualTo(ExecutionPlan.DefaultRamBudgetBytes, engine.Plan.RamBytes, "the default plan must stay within its 2 MiB budget");
        // ResNet-50 in 1 MiB: the stem, stages 2 and 3 streamed as one segment in two phases, the input made row by row
        var streamedImage = FlashImage.Open(new MemoryFlash(bytes));
        var oneMiB = new ExecutionPlan(streamedImage.Model, ramBudgetBytes: 1 << 20);
        Assert.IsLessThanOrEqualTo(1L << 20, oneMiB.RamBytes);
        Assert.IsGreaterThanOrEqualTo(0, oneMiB.SegmentEnd, "the 1 MiB plan streams a segment");
        Assert.IsGreaterThanOrEqualTo(0, oneMiB.SegmentSplit, "the 1 MiB plan streams it in two phases");
        var streamed = EngineHeap.New(streamedImage, oneMiB);
        var smallest = EngineHeap.New(streamedImage, ExecutionPlan.Smallest(streamedImage.Model)); // one-row bands everywhere in the segment
        Assert.IsLessThan(oneMiB.RamBytes, smallest.Plan.RamBytes);
        var photos = Dataset.Load(dir, Split.Evaluation).Where((_, i) => i % 180 == 0).ToList();
        Assert.HasCount(5, photos);
        int agreeWithFloat = 0;
        foreach (var photo in photos)
        {
            var x = CaffePreprocessing.Run(RgbImage.Load(photo.Path));
            var q = Quantizer.QuantizeInput(x, model);
            var expected = sim.Run(q);
            long before = counting.BytesRead;
            CollectionAssert.AreEqual(expected, engine.Run(q), photo.FileName);
            CollectionAssert.AreEqual(expected, streamed.Run(q), photo.FileName + " (1 MiB plan)");
            CollectionAssert.AreEqual(expected, smallest.Run(q), photo.FileName + " (the smallest plan)");
            Assert.IsLessThanOrEqualTo(1.5 * bytes.Length, counting.BytesRead - before, "flash bytes read per frame");
            if (Evaluator.TopK(expected, 1)[0] == Evaluator.TopK(reference.Forward(x), 1)[0]) agreeWithFloat++;
        }
        Assert.IsGreaterThanOrEqualTo(4, agreeWithFloat, "top-1 agreement with the float model");
    }
}
