using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;

namespace EdgeResNet.Tools.Quantization;

/// <summary>Per-channel first and second moments of one float tensor over all positions of all calibration inputs.</summary>
public sealed class ChannelMoments(int channels)
{
    public readonly double[] Sum = new double[channels], SumSquares = new double[channels];
    public long Count; // values per channel

    public double Mean(int c) => Count == 0 ? 0 : Sum[c] / Count;
    public double MeanSquare(int c) => Count == 0 ? 0 : SumSquares[c] / Count;

    internal void Add(float[] hwc)
    {
        int channels = Sum.Length;
        for (int i = 0; i < hwc.Length; i += channels)
            for (int c = 0; c < channels; c++)
            {
                double v = hwc[i + c];
                Sum[c] += v;
                SumSquares[c] += v * v;
            }
        Count += hwc.Length / channels;
    }

    internal void Merge(ChannelMoments o)
    {
        for (int c = 0; c < Sum.Length; c++) { Sum[c] += o.Sum[c]; SumSquares[c] += o.SumSquares[c]; }
        Count += o.Count;
    }
}

/// <summary>
/// How often each |x| of one float tensor occurred, in bins of 1/64 octave (a float's exponent and top 6 mantissa bits):
/// enough to weigh a fixed-point format's rounding against its clipping without keeping the values.
/// </summary>
public sealed class MagnitudeHistogram
{
    const int MantissaBits = 6, Shift = 23 - MantissaBits;
    public readonly long[] Counts = new long[1 << (31 - Shift)];

    public void Add(float[] values)
    {
        foreach (var v in values) Counts[(BitConverter.SingleToInt32Bits(v) & int.MaxValue) >> Shift]++;
    }

    internal void Merge(MagnitudeHistogram o)
    {
        for (int i = 0; i < Counts.Length; i++) Counts[i] += o.Counts[i];
    }

    /// <summary>
    /// Squared error of storing every counted value with this step, clipped at <paramref name="clip"/>: each bin's values
    /// taken at its middle, rounding worth step^2 / 12 (or v^2 below half a step, where v rounds to 0), clipping (v - clip)^2.
    /// </summary>
    public double SquaredError(double step, double clip)
    {
        double err = 0, rounding = step * step / 12;
        for (int i = 1; i < Counts.Length; i++)
        {
            if (Counts[i] == 0) continue;
            double v = BitConverter.Int32BitsToSingle((i << Shift) | (1 << (Shift - 1)));
            err += Counts[i] * (v > clip ? (v - clip) * (v - clip) : v < step / 2 ? v * v : rounding);
        }
        return err;
    }
}

/// <summary>
/// Per-tensor statistics of the float model on the calibration images: the largest |x| of every
/// layer's output (the input tensor under the input layer's name), its per-channel moments
/// (bias correction and the mixed-precision search use them) and its magnitude histogram (activation formats below 16 bits).
/// </summary>
public sealed class Calibration
{
    public Dictionary<string, float> MaxAbs { get; } = new();
    public Dictionary<string, MagnitudeHistogram> Magnitudes { get; } = new();
    public Dictionary<string, ChannelMoments> Moments { get; } = new();
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
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new Calibration(), (i, _, local) =>
        {
            var logits = reference.Forward(inputOf(i), (layer, output) =>
            {
                float m = 0;
                foreach (var v in output) m = Math.Max(m, Math.Abs(v));
                local.MaxAbs[layer.Name] = Math.Max(local.MaxAbs.GetValueOrDefault(layer.Name), m);
                if (!local.Moments.TryGetValue(layer.Name, out var moments))
                    local.Moments[layer.Name] = moments = new ChannelMoments(layer.OutShape.C);
                moments.Add(output);
                if (!local.Magnitudes.TryGetValue(layer.Name, out var magnitudes)) local.Magnitudes[layer.Name] = magnitudes = new MagnitudeHistogram();
                magnitudes.Add(output);
            });
            cal.FloatTop1[i] = Evaluator.TopK(logits, 1)[0];
            progress?.Invoke(Interlocked.Increment(ref done));
            return local;
        }, local =>
        {
            lock (cal)
            {
                foreach (var (k, v) in local.MaxAbs) cal.MaxAbs[k] = Math.Max(cal.MaxAbs.GetValueOrDefault(k), v);
                foreach (var (k, v) in local.Moments)
                    if (cal.Moments.TryGetValue(k, out var m)) m.Merge(v); else cal.Moments[k] = v;
                foreach (var (k, v) in local.Magnitudes)
                    if (cal.Magnitudes.TryGetValue(k, out var h)) h.Merge(v); else cal.Magnitudes[k] = v;
            }
        });
        cal.Images = count;
        return cal;
    }
}
