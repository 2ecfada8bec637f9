using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;
using EdgeResNet.Tools.Reports;

namespace EdgeResNet.Tests;

/// <summary>The fixtures and harnesses the CLI commands call, tested where they live (the tools library).</summary>
[TestClass]
public sealed class ToolFixtureTests
{
    [TestMethod]
    public void MiniImageFixtureWritesAnImageWithItsExpectedLogits()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mini-" + Guid.NewGuid().ToString("N"));
        try
        {
            var files = MiniImageFixture.Write(dir, seed: 4);
            var model = FlashImage.Open(new MemoryFlash(File.ReadAllBytes(files.ImagePath))).LoadAll();
            var raw = File.ReadAllBytes(Path.Combine(dir, "input.bin"));
            var input = new short[raw.Length / 2];
            Buffer.BlockCopy(raw, 0, input, 0, raw.Length);
            var expected = File.ReadAllLines(Path.Combine(dir, "expected.txt")).Select(int.Parse).ToArray();
            CollectionAssert.AreEqual(new IntegerSimulator(model).Run(input), expected, "expected.txt holds the simulator's logits for input.bin");
            Assert.AreEqual(files.Logits, expected.Length);
            Assert.AreEqual(MiniImageFixture.FrameWidth * MiniImageFixture.FrameHeight * 2, new FileInfo(Path.Combine(dir, "frame.yuyv")).Length, "a YUYV frame is 2 bytes a pixel");
            var frame = new Frame(MiniImageFixture.FrameWidth, MiniImageFixture.FrameHeight, PixelFormat.Yuyv, File.ReadAllBytes(Path.Combine(dir, "frame.yuyv")));
            var q = new short[model.InputSize];
            FramePreprocessor.For(model, frame.Width, frame.Height).Run(frame, q);
            CollectionAssert.AreEqual(new IntegerSimulator(model).Run(q), File.ReadAllLines(Path.Combine(dir, "expected-frame.txt")).Select(int.Parse).ToArray());
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    [TestMethod]
    public void TheBenchmarkTimesEveryFrameOnceAfterAWarmUp()
    {
        var inputs = Enumerable.Range(0, 7).Select(i => new float[] { i }).ToArray();
        int calls = 0;
        var (median, fps) = Benchmark.Time(inputs, 2, _ => { Interlocked.Increment(ref calls); Thread.Sleep(2); });
        Assert.AreEqual(2 + 7, calls, "two warm-up frames (one per thread), then each frame once");
        Assert.IsGreaterThan(0.0, median);
        Assert.IsGreaterThan(0.0, fps);
    }

    [TestMethod]
    public void TwoRunnersAreTimedInTurnInBlocksOfFiveEachAfterAWarmUpWhoGoesFirstAlternating()
    {
        var inputs = Enumerable.Range(0, 12).Select(i => new float[] { i }).ToArray();
        var order = new List<string>();
        var (a, b) = Benchmark.TimeInBlocks(inputs, x => { order.Add("a" + x[0]); Thread.Sleep(1); }, x => { order.Add("b" + x[0]); Thread.Sleep(15); });
        // blocks [0,5), [5,10), [10,12): a warm-up then the block, for each runner; which goes first alternates
        var expected = new List<string>();
        foreach (var (i0, i1, first) in new[] { (0, 5, "a"), (5, 10, "b"), (10, 12, "a") })
            foreach (var who in first == "a" ? new[] { "a", "b" } : new[] { "b", "a" })
            {
                expected.Add(who + i0);
                for (int i = i0; i < i1; i++) expected.Add(who + i);
            }
        CollectionAssert.AreEqual(expected, order);
        Assert.HasCount(12, a.Times);
        Assert.IsLessThan(b.MedianMs, a.MedianMs, "the 1 ms runner is faster than the 15 ms one");
    }

    [TestMethod]
    public void AnImageWithOtherPreprocessingIsRefusedByTheFloatPath()
    {
        var (model, _, _) = RuntimeTests.MiniPacked(new QuantOptions());
        var e = Assert.ThrowsExactly<NotSupportedException>(() => CaffePreprocessing.CheckMatches(model));
        StringAssert.Contains(e.Message, "centre crop 32");
        model.Preprocessing = InputPreprocessing.Caffe();
        CaffePreprocessing.CheckMatches(model);
    }

    /// <summary>The sweep's engine: an image held in memory, run on the runtime, which names its kernel.</summary>
    [TestMethod]
    public void ARuntimeClassifierRunsAnImageFromMemory()
    {
        var (model, bytes) = RealModelTests.Quantized(BnScheme.Separate);
        using var classifier = RuntimeClassifier.FromBytes("sep10", bytes);
        StringAssert.StartsWith(classifier.Engine, "runtime engine (");
        var x = CaffePreprocessing.Run(RgbImage.Load(Dataset.Load(SampleImages.DirOrInconclusive(), Split.Evaluation, 1)[0].Path));
        CollectionAssert.AreEqual(new IntegerSimulator(model).Run(Quantizer.QuantizeInput(x, model)), classifier.IntegerLogits(x).ToArray());
    }
}

[TestClass]
public sealed class HtmlReportTests
{
    /// <summary>The report of a mini image: one self-contained page with the image's figures under their ids and a row per layer.</summary>
    [TestMethod]
    public void TheReportHoldsTheImagesFiguresAndNothingFromOutside()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        string path = image.Path;
        var fp = Footprint.Measure(path, Quantizer.QuantizeInput(inputs[0], model), EdgeResNet.Runtime.Engine.ExecutionPlan.DefaultRamBudgetBytes, BoardProfile.All);
        var html = HtmlReport.Render(new ReportData("mini.img", model, fp, null, null, null));
        StringAssert.Contains(html, $"<span id=\"image-bytes\" class=\"fig\">{bytes.Length:N0}</span>");
        StringAssert.Contains(html, $"<span id=\"runtime-ram\" class=\"fig\">{fp.RuntimeRamBytes:N0}</span>");
        StringAssert.Contains(html, $"<span id=\"layers\">{model.Layers.Length}</span>");
        Assert.AreEqual(model.Layers.Length, System.Text.RegularExpressions.Regex.Matches(html, "<tr><td>[0-9]+</td>").Count, "one table row per layer");
        Assert.AreEqual(fp.Steps.Count * 3, System.Text.RegularExpressions.Regex.Matches(html, "<rect x=\"[0-9.]+\" y=\"[0-9.]+\" width").Count - 3, "per step a tensor bar, a scratch bar and a flash bar, plus 3 legend boxes");
        Assert.IsFalse(System.Text.RegularExpressions.Regex.IsMatch(html, "(src|href)=\"https?:"), "nothing fetched from the network");
        Assert.IsFalse(html.Contains("second-runtime-ram"), "no second plan unless given");
    }

    /// <summary>With a second, smaller plan (the demo's 1 MiB one): its RAM and flash figures under their ids, and its own boards table.</summary>
    [TestMethod]
    public void TheReportShowsASecondSmallerPlanWithItsBoards()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        var input = Quantizer.QuantizeInput(inputs[0], model);
        var fp = Footprint.Measure(image.Path, input, EdgeResNet.Runtime.Engine.ExecutionPlan.DefaultRamBudgetBytes, BoardProfile.All);
        long smallest = EdgeResNet.Runtime.Engine.ExecutionPlan.Smallest(model).RamBytes;
        var small = Footprint.Measure(image.Path, input, smallest, BoardProfile.All, camera: new CameraFrame(224, 224, PixelFormat.Rgb565));
        Assert.IsTrue(small.RuntimeRamBytes < fp.RuntimeRamBytes, "the second plan is the smaller one");
        var html = HtmlReport.Render(new ReportData("mini.img", model, fp, null, null, null) { SecondPlan = small });
        StringAssert.Contains(html, $"<h2>The plan for {smallest:N0} B of RAM</h2>");
        StringAssert.Contains(html, $"<span id=\"second-runtime-ram\" class=\"fig\">{small.RuntimeRamBytes:N0}</span>");
        StringAssert.Contains(html, $"engine heap {small.MeasuredEngineHeapBytes:N0} B, allocated per frame {small.MeasuredAllocatedPerFrameBytes:N0} B");
        StringAssert.Contains(html, $"<span id=\"second-flash-per-frame\" class=\"fig\">{small.FlashBytesPerFrame:N0}</span>");
        Assert.AreEqual(2 * BoardProfile.All.Length, System.Text.RegularExpressions.Regex.Matches(html, "<tr><td class=\"l\" title=").Count, "a boards table for each plan");
    }
}
