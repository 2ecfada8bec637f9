using EdgeResNet.Common;
using EdgeResNet.Runtime;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;

namespace EdgeResNet.Tools.Quantization;

/// <summary>
/// How much each conv layer's weight rounding costs at each width, measured on the calibration photos:
/// per layer and width, the output noise the rounding puts into the layer (from the calibration's
/// per-channel input moments), times a per-layer gain that says how much of it reaches the logits
/// (measured once per layer: that layer alone at <see cref="MixedPrecision.ProbeBits"/>, every other
/// layer float, on the probe photos).
/// </summary>
public sealed class LayerSensitivity
{
    /// <summary>The conv layers, in table order, with their index in the integer layer table.</summary>
    public required string[] Names { get; init; }
    public required int[] TableIndex { get; init; }
    /// <summary>[layer][bits]: the predicted noise-to-signal ratio of the logits from this layer alone at this width.</summary>
    public required double[][] LogitNoise { get; init; }
    /// <summary>[layer]: the measured logit noise-to-signal ratio with this layer alone at <see cref="MixedPrecision.ProbeBits"/>.</summary>
    public required double[] ProbeNoise { get; init; }
    /// <summary>The integer layer table the sizes are computed from (any width; only geometry is used).</summary>
    public required QLayer[] Layers { get; init; }
    public required int ProbeImages { get; init; }
}

/// <summary>A per-layer width assignment for a flash budget.</summary>
public sealed record WidthChoice(LayerWidths Widths, long ImageBytes, double PredictedLogitNoise, double MeanBits);

/// <summary>
/// Mixed precision: chooses a weight width per conv layer so the image fits a flash budget with the
/// least predicted logit noise. Greedy: from <see cref="MaxBits"/> everywhere, take one bit at a time
/// from the layer where it costs the least noise per byte saved, until the image fits. Uses only the
/// calibration photos.
/// </summary>
public static class MixedPrecision
{
    public const int MinBits = 2, MaxBits = 16, ProbeBits = 6;

    /// <param name="probeInput">The float input tensor of probe photo i (calibration photos only).</param>
    public static LayerSensitivity Measure(Network net, Calibration cal, QuantOptions options, int probeImages, Func<int, float[]> probeInput, int threads,
        Action<string, int, int>? progress = null)
    {
        var consumers = Quantizer.Consumers(net);
        var reference = new FloatReference(net);
        // Realised kernels (in the float network's units) at every width, and the output noise each puts into its layer.
        QModel? geometry = null;
        var names = new List<string>();
        var tableIndex = new List<int>();
        var layerNoise = new List<double[]>();
        float[][]? probeKernels = null;
        for (int bits = MinBits; bits <= MaxBits; bits++)
        {
            var model = Quantizer.Quantize(net, cal, options with { WeightBits = bits, LayerBits = null });
            geometry ??= model;
            int n = 0;
            for (int t = 0; t < model.Layers.Length; t++)
            {
                var q = model.Layers[t];
                if (q.Op != QOp.Conv) continue;
                if (bits == MinBits) { names.Add(q.Name); tableIndex.Add(t); layerNoise.Add(new double[MaxBits + 1]); }
                var (kernel, noise) = Realised(net, cal, consumers, q);
                layerNoise[n][bits] = noise;
                if (bits == ProbeBits) (probeKernels ??= new float[model.Layers.Count(l => l.Op == QOp.Conv)][])[n] = kernel;
                n++;
            }
            progress?.Invoke("round every layer at 2..16 bits", bits - MinBits + 1, MaxBits - MinBits + 1);
        }

        // The logits of the probe photos in float, then with one layer at a time rounded to ProbeBits.
        var inputs = Enumerable.Range(0, probeImages).Select(probeInput).ToArray();
        var floatLogits = inputs.Select(x => reference.Forward(x)).ToArray();
        double signal = 0;
        foreach (var z in floatLogits)
        {
            double mean = z.Average(v => (double)v);
            signal += z.Sum(v => (v - mean) * (v - mean));
        }
        var probe = new double[names.Count];
        int done = 0;
        Parallel.For(0, names.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var probed = reference.WithKernel(names[i], probeKernels![i]);
            double noise = 0;
            for (int p = 0; p < inputs.Length; p++)
            {
                var z = probed.Forward(inputs[p]);
                for (int j = 0; j < z.Length; j++) noise += (double)(z[j] - floatLogits[p][j]) * (z[j] - floatLogits[p][j]);
            }
            probe[i] = noise / signal;
            progress?.Invoke($"probe each layer at {ProbeBits} bits on {probeImages} calibration photos", Interlocked.Increment(ref done), names.Count);
        });
        var logitNoise = new double[names.Count][];
        for (int i = 0; i < names.Count; i++)
        {
            double gain = layerNoise[i][ProbeBits] > 0 ? probe[i] / layerNoise[i][ProbeBits] : 0;
            logitNoise[i] = layerNoise[i].Select(v => v * gain).ToArray();
        }
        return new LayerSensitivity
        {
            Names = names.ToArray(), TableIndex = tableIndex.ToArray(), LogitNoise = logitNoise, ProbeNoise = probe, Layers = geometry!.Layers, ProbeImages = probeImages,
        };
    }

    /// <summary>
    /// A conv's rounded weights as the float network's kernel (HWIO / [in][out]: what the integer layer
    /// multiplies by, divided by the BN scale), and the noise power the rounding adds to the layer's
    /// output (BN applied) on the calibration inputs, counting inputs as uncorrelated.
    /// </summary>
    static (float[] Kernel, double Noise) Realised(Network net, Calibration cal, ILookup<string, Layer> consumers, QLayer q)
    {
        var l = net.ByName[q.Name];
        var (bn, _) = Quantizer.FusedAfter(l, consumers);
        string input = l.Inputs[0];
        if (net.ByName[input].Kind == LayerKind.ZeroPad) input = net.ByName[input].Inputs[0];
        var moments = cal.Moments[input];
        int k = q.ReduceSize, cout = q.OutC;
        var kernel = new float[l.Kernel.Length];
        double noise = 0;
        for (int c = 0; c < cout; c++)
        {
            double s = bn == null ? 1.0 : bn.Gamma[c] / Math.Sqrt((double)bn.Variance[c] + bn.Epsilon);
            double unit = Math.Pow(2, -q.WeightFrac - q.MultiplierFrac) * q.Multipliers[c] / s;
            for (int i = 0; i < k; i++)
            {
                double r = q.Weights[c * q.WeightStride + i] * unit, d = (r - l.Kernel[i * cout + c]) * s;
                kernel[i * cout + c] = (float)r;
                noise += d * d * moments.MeanSquare(i % q.InC);
            }
        }
        return (kernel, noise);
    }

    /// <summary>The widths with the least predicted logit noise whose image fits <paramref name="budgetBytes"/>.</summary>
    /// <exception cref="UsageException">Not even <see cref="MinBits"/> everywhere fits.</exception>
    public static WidthChoice Choose(LayerSensitivity s, long budgetBytes)
    {
        int n = s.Names.Length;
        var bits = Enumerable.Repeat(MaxBits, n).ToArray();
        var slot = new int[s.Layers.Length];
        Array.Fill(slot, -1);
        for (int i = 0; i < n; i++) slot[s.TableIndex[i]] = i;
        long Bytes() => FlashImageWriter.ImageBytes(s.Layers, t => bits[slot[t]]);
        long LayerBytes(int i, int b) => (long)EdgeResNet.Runtime.Flash.BitPacking.PackedBytes(s.Layers[s.TableIndex[i]].ReduceSize, b) * s.Layers[s.TableIndex[i]].OutC;
        long smallest = FlashImageWriter.ImageBytes(s.Layers, _ => MinBits);
        if (smallest > budgetBytes)
            throw new UsageException($"--flash-budget {budgetBytes:N0} B: even {MinBits}-bit weights everywhere make a {smallest:N0} B image; give at least that");
        while (Bytes() > budgetBytes)
        {
            int best = -1;
            double bestCost = double.MaxValue;
            for (int i = 0; i < n; i++)
            {
                if (bits[i] == MinBits) continue;
                double cost = (s.LogitNoise[i][bits[i] - 1] - s.LogitNoise[i][bits[i]]) / Math.Max(1, LayerBytes(i, bits[i]) - LayerBytes(i, bits[i] - 1));
                if (cost < bestCost) { bestCost = cost; best = i; }
            }
            bits[best]--;
        }
        var widths = new LayerWidths(Enumerable.Range(0, n).ToDictionary(i => s.Names[i], i => bits[i]));
        double weightBits = Enumerable.Range(0, n).Sum(i => (double)bits[i] * s.Layers[s.TableIndex[i]].ReduceSize * s.Layers[s.TableIndex[i]].OutC);
        double weights = Enumerable.Range(0, n).Sum(i => (double)s.Layers[s.TableIndex[i]].ReduceSize * s.Layers[s.TableIndex[i]].OutC);
        return new WidthChoice(widths, Bytes(), Enumerable.Range(0, n).Sum(i => s.LogitNoise[i][bits[i]]), weightBits / weights);
    }
}
