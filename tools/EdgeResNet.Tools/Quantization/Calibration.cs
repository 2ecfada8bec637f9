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

    public static Calibration Run(FloatReference reference, IReadOnlyList<LabeledImage> images, int threads, Action<int>? progress = null)
    {
        var cal = new Calibration();
        int done = 0;
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new Dictionary<string, float>(), (i, _, local) =>
        {
            var input = CaffePreprocessing.Run(RgbImage.Load(images[i].Path));
            reference.Forward(input, (layer, output) =>
            {
                float m = 0;
                foreach (var v in output) m = Math.Max(m, Math.Abs(v));
                local[layer.Name] = Math.Max(local.GetValueOrDefault(layer.Name), m);
            });
            progress?.Invoke(Interlocked.Increment(ref done));
            return local;
        }, local =>
        {
            lock (cal)
                foreach (var (k, v) in local) cal.MaxAbs[k] = Math.Max(cal.MaxAbs.GetValueOrDefault(k), v);
        });
        cal.Images = images.Count;
        return cal;
    }
}
