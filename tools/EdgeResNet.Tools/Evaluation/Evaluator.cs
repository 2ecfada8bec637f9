using EdgeResNet.Common.Imaging;
using System.Diagnostics;
using EdgeResNet.Tools.Imaging;

namespace EdgeResNet.Tools.Evaluation;

public sealed record Prediction(string File, int Label, int[] Top5);

public sealed record EvalReport(
    string Model, int Images, double Top1, double Top5, int Threads, double Seconds,
    IReadOnlyList<string> Errors, IReadOnlyList<Prediction> Predictions)
{
    public double ImagesPerSecond => Seconds > 0 ? Images / Seconds : 0;
    /// <summary>Fraction of images whose top-1 equals the reference's (null until compared).</summary>
    public double? AgreementTop1 { get; init; }
    /// <summary>Which engine computed the predictions (<see cref="IClassifier.Engine"/>).</summary>
    public string? Engine { get; init; }

    public EvalReport WithAgreement(IReadOnlyDictionary<string, int> referenceTop1) => this with
    {
        AgreementTop1 = Predictions.Count == 0 ? 0 : (double)Predictions.Count(p => referenceTop1.TryGetValue(p.File, out var t) && t == p.Top5[0]) / Predictions.Count,
    };
}

/// <summary>
/// Top-1 / top-5 accuracy of any classifier (preprocessed float tensor to its top-5 classes) over
/// a labelled set, images in parallel. An unreadable image is reported by name and left out.
/// </summary>
public static class Evaluator
{
    public static EvalReport Run(string modelName, IReadOnlyList<LabeledImage> images, Func<float[], int[]> top5Of,
        int threads, Action<int>? progress = null, Func<LabeledImage, float[]>? input = null)
    {
        input ??= image => CaffePreprocessing.Run(RgbImage.Load(image.Path));
        var predictions = new Prediction?[images.Count];
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        int done = 0;
        var sw = Stopwatch.StartNew();
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            try { predictions[i] = new Prediction(images[i].FileName, images[i].ClassIndex, top5Of(input(images[i]))); }
            catch (ImageDecodeException e) { errors.Add(e.Message); }
            progress?.Invoke(Interlocked.Increment(ref done));
        });
        var ok = predictions.Where(p => p != null).Select(p => p!).ToList();
        int top1 = ok.Count(p => p.Top5[0] == p.Label), top5 = ok.Count(p => p.Top5.Contains(p.Label));
        return new EvalReport(modelName, ok.Count, ok.Count == 0 ? 0 : (double)top1 / ok.Count, ok.Count == 0 ? 0 : (double)top5 / ok.Count,
            threads, sw.Elapsed.TotalSeconds, errors.OrderBy(e => e).ToList(), ok);
    }

    /// <summary>Indices of the k largest scores, best first (ties: lower index first).</summary>
    public static int[] TopK<T>(T[] scores, int k) where T : IComparable<T> =>
        Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(k).ToArray();
}
