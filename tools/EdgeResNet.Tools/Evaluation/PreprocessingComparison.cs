using System.Diagnostics;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

public sealed record PreprocessingReport(
    string Model, string Format, int Images, int MaxAbsDifference, int ImagesWithDifference, long ValuesDiffering, long Values,
    int Top1Same, double Top1Agreement, int Threads, double Seconds, IReadOnlyList<string> Errors)
{
    /// <summary>Which engine computed the top-1s.</summary>
    public string? Engine { get; init; }
    /// <summary>For a lossy sensor format: photos whose top-1 on the frame equals the top-1 on the original photo (what the format itself costs).</summary>
    public double? SensorFormatTop1Agreement { get; init; }
}

/// <summary>
/// The device's integer preprocessing (<see cref="FramePreprocessor"/> on a camera frame) against
/// the tools' float preprocessing (Pillow resize port, float mean subtraction, quantisation), per
/// photo: the largest difference in quantised input units and whether the runtime's top-1 stays.
/// The photo is first turned into the sensor format (RGB24 is lossless; RGB565 and YUYV lose
/// colour precision as a camera would); the float side decodes that frame to RGB with the
/// textbook float formulas (<see cref="FloatColour"/>), so the comparison covers the integer
/// colour conversion too. Identical inputs give identical logits, so the runtime runs on the
/// reference input only where the inputs differ. For lossy formats the top-1 on the original photo is
/// also compared: the cost of the format itself, not of the preprocessing.
/// </summary>
public static class PreprocessingComparison
{
    public static PreprocessingReport Run(string imagePath, IReadOnlyList<LabeledImage> images, PixelFormat format, int threads, Action<int>? progress = null)
    {
        using var runtime = new RuntimeClassifier(imagePath);
        var model = runtime.Current.Image.Model;
        bool lossy = format is not (PixelFormat.Rgb24 or PixelFormat.Bgr24);
        int maxDiff = 0, withDiff = 0, same = 0, done = 0, sensorSame = 0;
        long differing = 0, values = 0;
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        var gate = new object();
        var sw = Stopwatch.StartNew();
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            try
            {
                var photo = ImageFile.Decode(images[i].Path);
                var frame = SensorFormat.FromRgb24(photo, format);
                var reference = Quantizer.QuantizeInput(CaffePreprocessing.Run(FloatColour.ToRgb(frame)), model);
                var device = new short[reference.Length];
                FramePreprocessor.For(model, frame.Width, frame.Height).Run(frame, device);
                int imageMax = 0, imageDiffering = 0;
                for (int k = 0; k < device.Length; k++)
                {
                    int d = Math.Abs(device[k] - reference[k]);
                    if (d == 0) continue;
                    imageDiffering++;
                    imageMax = Math.Max(imageMax, d);
                }
                bool top1Same = true, sensorTop1Same = true;
                if (imageDiffering > 0 || lossy)
                {
                    int b = Evaluator.TopK(runtime.IntegerLogits(device), 1)[0];
                    top1Same = imageDiffering == 0 || Evaluator.TopK(runtime.IntegerLogits(reference), 1)[0] == b;
                    if (lossy)
                    {
                        var original = Quantizer.QuantizeInput(CaffePreprocessing.Run(new RgbImage(photo.Width, photo.Height, photo.Data)), model);
                        sensorTop1Same = Evaluator.TopK(runtime.IntegerLogits(original), 1)[0] == b;
                    }
                }
                lock (gate)
                {
                    maxDiff = Math.Max(maxDiff, imageMax);
                    values += device.Length;
                    differing += imageDiffering;
                    if (imageDiffering > 0) withDiff++;
                    if (top1Same) same++;
                    if (sensorTop1Same) sensorSame++;
                }
            }
            catch (ImageDecodeException e) { errors.Add(e.Message); }
            progress?.Invoke(Interlocked.Increment(ref done));
        });
        int n = images.Count - errors.Count;
        return new PreprocessingReport(Path.GetFileName(imagePath), format.ToString(), n, maxDiff, withDiff, differing, values,
            same, n == 0 ? 0 : (double)same / n, threads, sw.Elapsed.TotalSeconds, errors.OrderBy(e => e).ToList())
        {
            Engine = runtime.Engine,
            SensorFormatTop1Agreement = lossy && n > 0 ? (double)sensorSame / n : null,
        };
    }
}
