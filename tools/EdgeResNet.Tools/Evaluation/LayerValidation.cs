using System.Globalization;
using System.Text;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

/// <summary>How far one integer layer's output is from the float model's tensor, over all validated photos.</summary>
public sealed record LayerError(int Index, string Layer, string Op, string Shape, string Formats, double SqnrDb, double MaxAbsError, long Saturated, long Values);

public sealed record DeviceComparison(string File, int Frames, int BitExact, int Top1Same, IReadOnlyList<string> UnknownPhotos);

public sealed record ValidationReport(string Image, string Engine, int Images, double Top1, double Top5, double AgreementTop1,
    IReadOnlyList<LayerError> Layers, IReadOnlyList<string> Errors);

/// <summary>
/// Layer by layer, the integer network against the float one on the same photos (ST's "validate"):
/// each layer's output from the integer simulator (whole tensors, bit-exact with the runtime), in
/// real units, against the float tensor of the layer it computes (after its fused BN and ReLU):
/// SQNR in dB, the largest absolute error, and how many values sat at the edge of their format.
/// </summary>
public static class LayerValidation
{
    public static ValidationReport Run(string imageName, QModel model, Network net, IReadOnlyList<LabeledImage> images, int threads, Action<int>? progress = null)
    {
        CaffePreprocessing.CheckMatches(model);
        var reference = new FloatReference(net);
        var simulator = new IntegerSimulator(model);
        var floatOf = Quantizer.FloatOutputOf(net);
        var layers = model.Layers;
        var wanted = layers.Select(l => floatOf[l.Name]).ToHashSet();
        var total = new Stats[layers.Length];
        for (int i = 0; i < total.Length; i++) total[i] = new Stats();
        int top1 = 0, top5 = 0, agree = 0, done = 0;
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, k =>
        {
            try
            {
                var x = CaffePreprocessing.Run(RgbImage.Load(images[k].Path));
                var floats = new Dictionary<string, float[]>();
                var floatLogits = reference.Forward(x, (l, t) => { if (wanted.Contains(l.Name)) floats[l.Name] = (float[])t.Clone(); });
                var mine = new Stats[layers.Length];
                var logits = simulator.Run(Quantizer.QuantizeInput(x, model), (i, narrow, wide) =>
                    mine[i] = Compare(layers[i], floats[floatOf[layers[i].Name]], narrow, wide));
                var best = Evaluator.TopK(logits, 5);
                lock (total)
                {
                    for (int i = 0; i < layers.Length; i++) total[i].Add(mine[i]);
                    if (best[0] == images[k].ClassIndex) top1++;
                    if (best.Contains(images[k].ClassIndex)) top5++;
                    if (best[0] == Evaluator.TopK(floatLogits, 1)[0]) agree++;
                }
            }
            catch (Exception e) when (e is ImageDecodeException or IOException) { errors.Add(e.Message); }
            progress?.Invoke(Interlocked.Increment(ref done));
        });
        int n = images.Count - errors.Count;
        if (n == 0) throw new InvalidDataException($"none of the {images.Count} photo(s) could be read: {errors.OrderBy(e => e).FirstOrDefault() ?? "no photos given"}; check --images and labels.tsv");
        var rows = layers.Select((l, i) => new LayerError(i, l.Name, l.Op + (l.Relu ? "+ReLU" : ""), $"{l.OutH}x{l.OutW}x{l.OutC}", Formats(l, model.ActivationBits),
            total[i].SqnrDb, total[i].MaxAbs, total[i].Saturated, total[i].Values)).ToList();
        return new ValidationReport(imageName, "integer simulator (reference kernels, whole tensors; bit-exact with the runtime)", n,
            n == 0 ? 0 : (double)top1 / n, n == 0 ? 0 : (double)top5 / n, n == 0 ? 0 : (double)agree / n, rows, errors.OrderBy(e => e).ToList());
    }

    // An unsigned tensor shows its unsigned width: "u8.f", not "9.f".
    static string Formats(QLayer l, int activationBits) =>
        (Quantizer.IsUnsigned(l, activationBits) ? $"out u{l.OutBits - 1}.{l.OutFrac}" : $"out {l.OutBits}.{l.OutFrac}") + (l.Op == QOp.Conv ? $", w {l.WeightBits}.{l.WeightFrac}" + (l.MultiplierBits > 0 ? $", bn {l.MultiplierBits}.{l.MultiplierFrac}" : "") : "");

    static Stats Compare(QLayer l, float[] reference, short[] narrow, int[] wide)
    {
        var s = new Stats();
        double scale = Math.Pow(2, -l.OutFrac);
        long max = (1L << (l.OutBits - 1)) - 1, min = -(1L << (l.OutBits - 1));
        int count = l.WideOutput ? wide.Length : narrow.Length;
        if (count != reference.Length) throw new InvalidDataException($"layer '{l.Name}': {count} integer values against {reference.Length} float ones");
        for (int i = 0; i < count; i++)
        {
            long q = l.WideOutput ? wide[i] : narrow[i];
            double f = reference[i], e = q * scale - f;
            s.Signal += f * f;
            s.Noise += e * e;
            s.MaxAbs = Math.Max(s.MaxAbs, Math.Abs(e));
            if (q == max || (q == min && !l.Relu)) s.Saturated++;
        }
        s.Values = count;
        return s;
    }

    sealed class Stats
    {
        public double Signal, Noise, MaxAbs;
        public long Saturated, Values;
        public double SqnrDb => Noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(Signal / Noise);

        public void Add(Stats o)
        {
            Signal += o.Signal; Noise += o.Noise; MaxAbs = Math.Max(MaxAbs, o.MaxAbs);
            Saturated += o.Saturated; Values += o.Values;
        }
    }

    /// <summary>
    /// The board app's logits (<c>edgeresnet-device run --logits-out F</c>: one line per frame, the photo's
    /// file name, a tab, the integer logits) against the host runtime's on the same photos. With RGB24
    /// folder frames the board's integer preprocessing is the host's, so the logits must be bit-exact;
    /// sensor formats (YUYV, RGB565) lose colour first and are compared by top-1.
    /// </summary>
    public static DeviceComparison CompareDevice(string logitsFile, RuntimeClassifier host, IReadOnlyList<LabeledImage> images)
    {
        var byName = images.ToDictionary(i => i.FileName);
        int frames = 0, exact = 0, sameTop1 = 0;
        var unknown = new List<string>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(logitsFile))
        {
            lineNumber++;
            var parts = line.Split('\t');
            if (parts.Length != 2) throw new InvalidDataException($"{logitsFile}:{lineNumber}: expected 'photo<TAB>logits' as edgeresnet-device run --logits-out writes");
            if (!byName.TryGetValue(parts[0], out var photo)) { unknown.Add(parts[0]); continue; }
            int[] device;
            try { device = parts[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray(); }
            catch (FormatException) { throw new InvalidDataException($"{logitsFile}:{lineNumber}: the logits are not integers"); }
            var mine = host.IntegerLogits(CaffePreprocessing.Run(RgbImage.Load(photo.Path)));
            if (device.Length != mine.Length) throw new InvalidDataException($"{logitsFile}:{lineNumber}: {device.Length} logits, the image has {mine.Length} classes");
            frames++;
            if (device.AsSpan().SequenceEqual(mine)) exact++;
            if (Evaluator.TopK(device, 1)[0] == Evaluator.TopK(mine, 1)[0]) sameTop1++;
        }
        return new DeviceComparison(logitsFile, frames, exact, sameTop1, unknown);
    }

    public static string Markdown(ValidationReport r, string command)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Image `{r.Image}`, {r.Images} photos; engine: {r.Engine}. Command: `{command}`.");
        sb.AppendLine();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"On these photos: top-1 {r.Top1 * 100:F2} %, top-5 {r.Top5 * 100:F2} %, top-1 agreement with float {r.AgreementTop1 * 100:F2} %."));
        sb.AppendLine();
        sb.AppendLine("| # | layer | op | output | formats (bits.frac) | SQNR dB | largest abs error | saturated |");
        sb.AppendLine("| ---: | --- | --- | --- | --- | ---: | ---: | ---: |");
        foreach (var l in r.Layers)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {l.Index} | {l.Layer} | {l.Op} | {l.Shape} | {l.Formats} | {l.SqnrDb:F1} | {l.MaxAbsError:G3} | {l.Saturated:N0} of {l.Values:N0} |"));
        return sb.ToString();
    }
}
