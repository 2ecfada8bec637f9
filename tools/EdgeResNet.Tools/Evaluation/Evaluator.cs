using System.Diagnostics;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;

namespace EdgeResNet.Tools.Evaluation;

public sealed record Prediction(string File, int Label, int[] Top5);

public sealed record EvalReport(
    string Model, int Images, double Top1, double Top5, int Threads, double Seconds,
    IReadOnlyList<string> Errors, IReadOnlyList<Prediction> Predictions)
{
    public double ImagesPerSecond => Seconds > 0 ? Images / Seconds : 0;
}

/// <summary>
/// Top-1 / top-5 accuracy of any classifier (preprocessed tensor to logits) over a labelled set,
/// images in parallel. An unreadable image is reported by name and left out; the run goes on.
/// </summary>
public static class Evaluator
{
    public static EvalReport Run(string modelName, IReadOnlyList<LabeledImage> images, Func<float[], float[]> logitsOf,
        int threads, Action<int>? progress = null)
    {
        var predictions = new Prediction?[images.Count];
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        int done = 0;
        var sw = Stopwatch.StartNew();
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            try
            {
                var input = CaffePreprocessing.Run(RgbImage.Load(images[i].Path));
                predictions[i] = new Prediction(images[i].FileName, images[i].ClassIndex, FloatReference.TopK(logitsOf(input), 5));
            }
            catch (ImageDecodeException e) { errors.Add(e.Message); }
            progress?.Invoke(Interlocked.Increment(ref done));
        });
        var ok = predictions.Where(p => p != null).Select(p => p!).ToList();
        int top1 = ok.Count(p => p.Top5[0] == p.Label), top5 = ok.Count(p => p.Top5.Contains(p.Label));
        return new EvalReport(modelName, ok.Count, ok.Count == 0 ? 0 : (double)top1 / ok.Count, ok.Count == 0 ? 0 : (double)top5 / ok.Count,
            threads, sw.Elapsed.TotalSeconds, errors.OrderBy(e => e).ToList(), ok);
    }
}
