using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>The device's integer preprocessing against the tools' float path (Pillow port + float means).</summary>
[TestClass]
public sealed class FramePreprocessorTests
{
    static readonly QModel Input7 = new() { InputH = 224, InputW = 224, InputC = 3, InputFrac = 7, ActivationBits = 16 };

    static short[] ToolsInput(Frame rgb) =>
        Quantizer.QuantizeInput(CaffePreprocessing.Run(new RgbImage(rgb.Width, rgb.Height, rgb.Data)), Input7);

    static short[] DeviceInput(Frame frame)
    {
        var q = new short[Input7.InputSize];
        FramePreprocessor.For(Input7, frame.Width, frame.Height).Run(frame, q);
        return q;
    }

    static Frame Noise(int w, int h, int seed)
    {
        var rng = new Random(seed);
        var px = new byte[w * h * 3];
        // Smooth gradients plus noise: both the resize taps and the clipping get exercised.
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    px[(y * w + x) * 3 + c] = (byte)Math.Clamp((x * (c + 1) * 255 / w + y * 255 / h) / 2 + rng.Next(-40, 41), 0, 255);
        return new Frame(w, h, PixelFormat.Rgb24, px);
    }

    [TestMethod]
    [DataRow(640, 480)] // VGA camera: downscale
    [DataRow(160, 120)] // small camera: upscale
    [DataRow(256, 256)] // no resize at all
    [DataRow(224, 300)] // upscale one way, portrait
    [DataRow(1001, 257)] // odd sizes, wide
    [DataRow(333, 2000)] // strong downscale, tall
    public void Rgb24FramesEqualTheToolsPath(int w, int h)
    {
        var frame = Noise(w, h, w * 7 + h);
        CollectionAssert.AreEqual(ToolsInput(frame), DeviceInput(frame));
    }

    [TestMethod]
    public void SamplePhotosEqualTheToolsPath()
    {
        var set = Dataset.Load(SampleImages.DirOrInconclusive()).Where((_, i) => i % 125 == 0).ToList();
        Assert.AreEqual(8, set.Count);
        foreach (var photo in set)
        {
            var frame = ImageFile.Decode(photo.Path);
            CollectionAssert.AreEqual(ToolsInput(frame), DeviceInput(frame), photo.FileName);
        }
    }

    [TestMethod]
    public void EveryFormatConvertsBackToItsColours()
    {
        // Colours each format holds exactly: multiples of 8 / 4 survive RGB565; greys survive GREY8.
        var rgb = new Frame(4, 2, PixelFormat.Rgb24, [255, 255, 255, 0, 0, 0, 248, 0, 0, 0, 252, 0, 0, 0, 248, 128, 128, 128, 16, 32, 64, 200, 100, 50]);
        var back = new byte[4 * 3];
        foreach (var format in new[] { PixelFormat.Rgb24, PixelFormat.Bgr24 })
        {
            var f = SensorFormat.FromRgb24(rgb, format);
            for (int y = 0; y < 2; y++)
            {
                FramePreprocessor.ConvertRow(f, y, 0, 4, back);
                CollectionAssert.AreEqual(rgb.Data.AsSpan(y * 12, 12).ToArray(), back, format.ToString());
            }
        }
        var r565 = SensorFormat.FromRgb24(rgb, PixelFormat.Rgb565);
        FramePreprocessor.ConvertRow(r565, 0, 0, 4, back);
        CollectionAssert.AreEqual(new byte[] { 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0 }, back); // 248 -> 31 -> 255 by bit replication
        FramePreprocessor.ConvertRow(r565, 1, 0, 4, back);
        CollectionAssert.AreEqual(new byte[] { 0, 0, 255, 132, 130, 132, 16, 32, 66, 206, 101, 49 }, back); // low bits repeat the top bits
        var grey = SensorFormat.FromRgb24(new Frame(2, 1, PixelFormat.Rgb24, [0, 0, 0, 255, 255, 255]), PixelFormat.Grey8);
        var greyBack = new byte[6];
        FramePreprocessor.ConvertRow(grey, 0, 0, 2, greyBack);
        CollectionAssert.AreEqual(new byte[] { 0, 0, 0, 255, 255, 255 }, greyBack);
    }

    [TestMethod]
    public void YuyvRoundTripStaysWithinTwoLevels()
    {
        // BT.601 limited range loses a little: every colour of a coarse RGB cube comes back within 2 levels
        // when both pixels of a YUYV pair have the same colour.
        var back = new byte[6];
        for (int r = 0; r < 256; r += 15)
            for (int g = 0; g < 256; g += 15)
                for (int b = 0; b < 256; b += 15)
                {
                    var f = SensorFormat.FromRgb24(new Frame(2, 1, PixelFormat.Rgb24, [(byte)r, (byte)g, (byte)b, (byte)r, (byte)g, (byte)b]), PixelFormat.Yuyv);
                    FramePreprocessor.ConvertRow(f, 0, 0, 2, back);
                    Assert.IsTrue(Math.Abs(back[0] - r) <= 2 && Math.Abs(back[1] - g) <= 2 && Math.Abs(back[2] - b) <= 2,
                        $"({r},{g},{b}) came back as ({back[0]},{back[1]},{back[2]})");
                }
    }

    [TestMethod]
    public void RunAllocatesNothingAndHonoursStride()
    {
        var tight = Noise(320, 240, 3);
        // The same pixels in rows padded to 1000 bytes, as a V4L2 driver may deliver them.
        var padded = new byte[1000 * 240];
        for (int y = 0; y < 240; y++) tight.Data.AsSpan(y * 960, 960).CopyTo(padded.AsSpan(y * 1000));
        var pre = FramePreprocessor.For(Input7, 320, 240);
        var a = new short[Input7.InputSize];
        var b = new short[Input7.InputSize];
        var f = new Frame(320, 240, PixelFormat.Rgb24, padded, 1000);
        pre.Run(tight, a);
        long before = GC.GetAllocatedBytesForCurrentThread();
        pre.Run(f, b);
        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
        CollectionAssert.AreEqual(a, b);
    }

    [TestMethod]
    public void WrongSizesAreClearErrors()
    {
        var pre = FramePreprocessor.For(Input7, 320, 240);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => pre.Run(Noise(640, 480, 1), new short[Input7.InputSize])).Message, "built for 320x240");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => pre.Run(Noise(320, 240, 1), new short[10])).Message, "needs 150528");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new Frame(320, 240, PixelFormat.Rgb565, new byte[100])).Message, "needs 153600 bytes");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new Frame(321, 240, PixelFormat.Yuyv, new byte[321 * 480])).Message, "even width");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => pre.WriteRows(0, 1, new short[224 * 3])).Message, "call Begin(frame)");
        pre.Begin(Noise(320, 240, 1));
        pre.WriteRows(0, 2, new short[2 * 224 * 3]);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => pre.WriteRows(1, 1, new short[224 * 3])).Message, "made in order");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => pre.WriteRows(223, 2, new short[2 * 224 * 3])).Message, "made in order");
    }

    /// <summary>
    /// A plan that streams its input asks the preprocessor for rows as the stem needs them: the logits equal those of the
    /// whole preprocessed input, and the rows come in order, each at most once, however the engine's windows slide.
    /// </summary>
    [TestMethod]
    public void AStreamedInputGivesTheLogitsOfTheWholeInput()
    {
        var (model, bytes, _) = RuntimeTests.MiniPacked(new QuantOptions(), size: 96);
        var image = FlashImage.Open(new MemoryFlash(bytes));
        var plan = ExecutionPlan.Smallest(image.Model);
        Assert.IsTrue(plan.StreamsInput, "the smallest plan of the 96x96 network streams its input");
        using var engine = new InferenceEngine(image, plan);
        var frame = Noise(160, 120, 5);
        var pre = FramePreprocessor.For(image.Model, frame.Width, frame.Height);
        var whole = new short[image.Model.InputSize];
        pre.Run(frame, whole);
        var expected = new IntegerSimulator(model).Run(whole);
        pre.Begin(frame);
        CollectionAssert.AreEqual(expected, engine.Run(pre), "rows made on demand");
        CollectionAssert.AreEqual(expected, engine.Run(whole), "rows copied from a whole input");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => engine.Run(new short[10])).Message, "the image takes 96x96x3");
    }
}

[TestClass]
public sealed class DeviceFootprintTests
{
    /// <summary>The report's per-step flash figures (planned: each conv's sections once per band) add up to what a measured frame reads.</summary>
    [TestMethod]
    [DataRow(ExecutionPlan.DefaultRamBudgetBytes)]
    [DataRow(1L)]
    public void StepFlashBytesAddUpToTheMeasuredFrame(long budget)
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        string path = image.Path;
        bool smallest = budget == 1;
        if (smallest) budget = ExecutionPlan.Smallest(model).RamBytes; // the smallest plan: one-row bands
        var r = EdgeResNet.Tools.Reports.Footprint.Measure(path, Quantizer.QuantizeInput(inputs[0], model), budget, []);
        Assert.AreEqual(r.FlashBytesPerFrame, r.Steps.Sum(s => s.FlashBytes));
        Assert.IsTrue(r.Steps.All(s => s.TensorBytes > 0 && s.Bands >= 1));
        if (smallest) Assert.IsTrue(r.Steps.Any(s => s.Bands > 1), "the smallest plan streams in several bands");
    }

    [TestMethod]
    public void AFrameSizeAddsThePreprocessingAndTheFrameBufferToTheBoardFit()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        string path = image.Path;
        var q = Quantizer.QuantizeInput(inputs[0], model);
        var board = new EdgeResNet.Tools.Reports.BoardProfile("tiny", "a board with exactly the runtime's RAM", 1L << 30, 0);
        var plain = EdgeResNet.Tools.Reports.Footprint.Measure(path, q, ExecutionPlan.DefaultRamBudgetBytes, [board with { RamBytes = 1L << 30 }]);
        board = board with { RamBytes = plain.RuntimeRamBytes };
        var camera = new EdgeResNet.Tools.Reports.CameraFrame(640, 480, PixelFormat.Yuyv);
        var r = EdgeResNet.Tools.Reports.Footprint.Measure(path, q, ExecutionPlan.DefaultRamBudgetBytes, [board], camera: camera);
        long preprocessing = FramePreprocessor.For(model, 640, 480).RamBytes;
        Assert.AreEqual(preprocessing, r.PreprocessingBytes);
        Assert.AreEqual(640 * 480 * 2L, r.FrameBufferBytes);
        Assert.AreEqual(plain.RuntimeRamBytes + preprocessing + 640 * 480 * 2L, r.DeviceRamBytes);
        Assert.AreEqual(plain.RuntimeRamBytes, plain.DeviceRamBytes, "without a frame size the board app needs the runtime's RAM");
        Assert.IsTrue(EdgeResNet.Tools.Reports.Footprint.Measure(path, q, ExecutionPlan.DefaultRamBudgetBytes, [board]).Boards[0].Fits, "the runtime alone fits");
        Assert.IsFalse(r.Boards[0].Fits, "runtime + preprocessing + frame does not");
        StringAssert.Contains(r.Boards[0].Limit, "640x480 Yuyv frame RAM");
    }

    /// <summary>A board the plan does not fit gets a plan of its own, run on the same flash: its frame's reads are not the measured frame's.</summary>
    [TestMethod]
    public void ABoardsOwnPlanDoesNotCountInTheMeasuredFramesReads()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        using var image = new TempFile(bytes);
        var q = Quantizer.QuantizeInput(inputs[0], model);
        var alone = EdgeResNet.Tools.Reports.Footprint.Measure(image.Path, q, ExecutionPlan.DefaultRamBudgetBytes, []);
        var small = new EdgeResNet.Tools.Reports.BoardProfile("small", "RAM for the smallest plan only", 1L << 30, ExecutionPlan.Smallest(model).RamBytes);
        var r = EdgeResNet.Tools.Reports.Footprint.Measure(image.Path, q, ExecutionPlan.DefaultRamBudgetBytes, [small]);
        Assert.IsNotNull(r.Boards[0].BoardPlanRamBytes, "the board got a plan of its own, and a frame was run with it");
        Assert.AreEqual(alone.FlashReadsPerFrame, r.FlashReadsPerFrame);
        Assert.AreEqual(alone.FlashBytesPerFrame, r.FlashBytesPerFrame);
    }
}
