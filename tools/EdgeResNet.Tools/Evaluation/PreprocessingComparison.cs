using System.Diagnostics;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

public sealed record PreprocessingReport(
    string Model, string Format, int Images, int MaxAbsDifference, int ImagesWithDifference, long ValuesDiffering, long Values,
    int Top1Same, double Top1Agreement, int ImagesRunTwice, int Threads, double Seconds, IReadOnlyList<string> Errors);

/// <summary>
/// The device's integer preprocessing (<see cref="FramePreprocessor"/> on a camera frame) against
/// the tools' float preprocessing (Pillow resize port, float mean subtraction, quantisation), per
/// photo: the largest difference in quantised input units and whether the runtime's top-1 stays.
/// The photo is first turned into the sensor format (RGB24 is lossless; RGB565 and YUYV lose
/// colour precision as a camera would). Identical inputs give identical logits, so the runtime
/// runs twice only on photos whose inputs differ.
/// </summary>
public static class PreprocessingComparison
{
    public static PreprocessingReport Run(string imagePath, IReadOnlyList<LabeledImage> images, PixelFormat format, int threads, Action<int>? progress = null)
    {
        using var runtime = new RuntimeClassifier(imagePath);
        var model = runtime.Current.Image.Model;
        int maxDiff = 0, withDiff = 0, same = 0, twice = 0, done = 0;
        long differing = 0, values = 0;
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        var gate = new object();
        var sw = Stopwatch.StartNew();
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            try
            {
                var photo = ImageFile.Decode(images[i].Path);
                var reference = Quantizer.QuantizeInput(CaffePreprocessing.Run(new RgbImage(photo.Width, photo.Height, photo.Data)), model);
                var frame = SensorFormat.FromRgb24(photo, format);
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
                bool top1Same = true;
                if (imageDiffering > 0)
                {
                    int a = Evaluator.TopK(runtime.IntegerLogits(reference), 1)[0];
                    int b = Evaluator.TopK(runtime.IntegerLogits(device), 1)[0];
                    top1Same = a == b;
                }
                lock (gate)
                {
                    maxDiff = Math.Max(maxDiff, imageMax);
                    values += device.Length;
                    differing += imageDiffering;
                    if (imageDiffering > 0) { withDiff++; twice++; }
                    if (top1Same) same++;
                }
            }
            catch (ImageDecodeException e) { errors.Add(e.Message); }
            progress?.Invoke(Interlocked.Increment(ref done));
        });
        int n = images.Count - errors.Count;
        return new PreprocessingReport(Path.GetFileName(imagePath), format.ToString(), n, maxDiff, withDiff, differing, values,
            same, n == 0 ? 0 : (double)same / n, twice, threads, sw.Elapsed.TotalSeconds, errors.OrderBy(e => e).ToList());
    }
}
