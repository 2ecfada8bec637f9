using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Packing;

/// <summary>What <see cref="MiniImageFixture.Write"/> wrote.</summary>
public sealed record MiniImageFiles(string ImagePath, long ImageBytes, int Logits);

/// <summary>
/// Test material for other hosts (the Mono check, the arm64 check): a small seeded network of
/// ResNet-50's structure packed as a mixed-width flash image (<see cref="MiniResNet.MixedOptions"/>), a quantised input with the simulator's logits
/// (checked against the .NET runtime first), and a synthetic YUYV camera frame with the logits the
/// device preprocessing and the runtime give for it.
/// </summary>
public static class MiniImageFixture
{
    public const int FrameWidth = 320, FrameHeight = 240;

    /// <summary>Writes mini.img, input.bin (int16 LE), expected.txt, frame.yuyv and expected-frame.txt (one logit per line) into <paramref name="dir"/>.</summary>
    public static MiniImageFiles Write(string dir, int seed)
    {
        Directory.CreateDirectory(dir);
        var model = MiniResNet.Quantized(MiniResNet.MixedOptions(), seed, out var inputs); // every width 2..16 in one image
        string img = Path.Combine(dir, "mini.img");
        var bytes = FlashImageWriter.ToBytes(model);
        var q = Quantizer.QuantizeInput(inputs[0], model);
        var expected = new IntegerSimulator(model).Run(q);
        var engine = new InferenceEngine(FlashImage.Open(new MemoryFlash(bytes)));
        if (!expected.SequenceEqual(engine.Run(q))) throw new InvalidDataException("the .NET runtime's logits differ from the simulator's on the mini network");
        var frame = SyntheticFrame(seed, PixelFormat.Yuyv);
        var preprocessor = FramePreprocessor.For(model, frame.Width, frame.Height);
        preprocessor.Begin(frame);
        engine.Run(preprocessor);
        var inputBytes = new byte[q.Length * 2];
        Buffer.BlockCopy(q, 0, inputBytes, 0, inputBytes.Length);
        AtomicFile.WriteAllBytes(img, bytes);
        AtomicFile.WriteAllBytes(Path.Combine(dir, "input.bin"), inputBytes);
        AtomicFile.WriteAllText(Path.Combine(dir, "expected.txt"), Lines(expected));
        AtomicFile.WriteAllBytes(Path.Combine(dir, "frame.yuyv"), frame.Data);
        AtomicFile.WriteAllText(Path.Combine(dir, "expected-frame.txt"), Lines(engine.Logits));
        return new MiniImageFiles(img, bytes.Length, expected.Length);
    }

    /// <summary>A seeded 320x240 scene of gradients and noise, as a sensor in <paramref name="format"/> would send it.</summary>
    public static Frame SyntheticFrame(int seed, PixelFormat format)
    {
        var rng = new Random(seed);
        var rgb = new byte[FrameWidth * FrameHeight * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)((i / 3 % FrameWidth + i / (3 * FrameWidth)) / 3 + rng.Next(64));
        return SensorFormat.FromRgb24(new Frame(FrameWidth, FrameHeight, PixelFormat.Rgb24, rgb), format);
    }

    static string Lines(int[] values) => string.Concat(values.Select(v => v + "\n"));
}
