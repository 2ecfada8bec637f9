using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;

namespace EdgeResNet.Tools.Quantization;

/// <summary>
/// Per-tensor statistics of the float model on the calibration images: the largest |x| of every
/// layer's output (the input tensor under the input layer's name).
/// </summary>
public sealed class Calibration
{
    public Dictionary<string, float> MaxAbs { get; } = new();
    public int Images { get; private set; }
    /// <summary>The float network's top-1 class of each calibration input (the packed image is checked against it).</summary>
    public int[] FloatTop1 { get; private set; } = [];

    public static Calibration Run(FloatReference reference, IReadOnlyList<LabeledImage> images, int threads, Action<int>? progress = null) =>
        Run(reference, images.Count, i => CaffePreprocessing.Run(RgbImage.Load(images[i].Path)), threads, progress);

    /// <summary>Calibrates on <paramref name="count"/> input tensors produced by <paramref name="inputOf"/>.</summary>
    public static Calibration Run(FloatReference reference, int count, Func<int, float[]> inputOf, int threads, Action<int>? progress = null)
    {
        var cal = new Calibration { FloatTop1 = new int[count] };
        int done = 0;
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new Dictionary<string, float>(), (i, _, local) =>
        {
            var logits = reference.Forward(inputOf(i), (layer, output) =>
            {
                float m = 0;
                foreach (var v in output) m = Math.Max(m, Math.Abs(v));
                local[layer.Name] = Math.Max(local.GetValueOrDefault(layer.Name), m);
            });
            cal.FloatTop1[i] = Evaluator.TopK(logits, 1)[0];
            progress?.Invoke(Interlocked.Increment(ref done));
            return local;
        }, local =>
        {
            lock (cal)
                foreach (var (k, v) in local) cal.MaxAbs[k] = Math.Max(cal.MaxAbs.GetValueOrDefault(k), v);
        });
        cal.Images = count;
        return cal;
    }
}
