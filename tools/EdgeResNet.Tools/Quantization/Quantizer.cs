using EdgeResNet.Common;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;

namespace EdgeResNet.Tools.Quantization;

/// <summary>How a layer's weight format is chosen: the least squared error of a few candidates (clips outliers), or the largest |w| (never clips).</summary>
public enum WeightFormat { Mse, Max }

/// <summary>One weight step per layer (a power of two), or one per output channel (any real value, absorbed by the channel's BN multiplier).</summary>
public enum WeightScales { PerLayer, PerChannel }

/// <summary>Weight bits per conv layer by name, for mixed precision; layers it does not name use <see cref="QuantOptions.WeightBits"/>.</summary>
public sealed class LayerWidths(IReadOnlyDictionary<string, int> bits)
{
    public IReadOnlyDictionary<string, int> Bits { get; } = bits;

    /// <summary>"conv1=8,res2a_branch2a=6,...": the stamp key and the report both print it.</summary>
    public override string ToString() => string.Join(",", Bits.Select(p => $"{p.Key}={p.Value}"));
}

public sealed record QuantOptions(int WeightBits = 10, int ActivationBits = 16, BnScheme Scheme = BnScheme.Separate, int MultiplierBits = 16, WeightFormat WeightFormat = WeightFormat.Mse,
    WeightScales Scales = WeightScales.PerLayer, bool BiasCorrection = false, LayerWidths? LayerBits = null)
{
    /// <summary>The weight width of conv layer <paramref name="name"/>.</summary>
    public int BitsOf(string name) => LayerBits != null && LayerBits.Bits.TryGetValue(name, out int b) ? b : WeightBits;

    /// <summary>
    /// The signed width a tensor saturates to (its layer's OutBits). A tensor after a ReLU spends no bit on a sign: its
    /// ActivationBits are unsigned, [0, 2^B - 1], which is the signed B + 1 range floored at 0 (uint8 for 8-bit activations,
    /// as int8 toolchains store them). At 16 bits there is no spare bit in the int16 tensors, so every tensor is signed.
    /// </summary>
    public int OutBitsOf(bool nonNegative) => nonNegative && ActivationBits < 16 ? ActivationBits + 1 : ActivationBits;

    public void Validate()
    {
        if (WeightBits is < 2 or > 16) throw new UsageException($"--bits {WeightBits}: weight bits must be 2..16");
        foreach (var (name, b) in LayerBits?.Bits ?? new Dictionary<string, int>())
            if (b is < 2 or > 16) throw new UsageException($"layer '{name}': {b} weight bits; weight bits must be 2..16");
        if (ActivationBits is < 4 or > 16) throw new UsageException($"--act-bits {ActivationBits}: activation bits must be 4..16");
        if (MultiplierBits is < 4 or > 24) throw new UsageException($"--bn-bits {MultiplierBits}: BN multiplier bits must be 4..24");
    }
}

/// <summary>
/// Lowers the float network to the integer layer table and chooses every fixed-point format:
/// Conv(+BN)(+ReLU) becomes one Conv layer, ZeroPadding2D becomes the padding of its consumer,
/// ReLU after Add is fused into the Add, Dense becomes a 1x1 Conv with int32 output (the logits).
/// Activation formats are powers of two: a per-tensor fraction-bit count from calibration (below 16 bits the least
/// squared error of a few, on the calibration histograms; tensors after a ReLU are unsigned there). Weights
/// have one step per layer (a power of two, the MSE-best of a few candidates) or, with
/// <see cref="WeightScales.PerChannel"/>, one per output channel (any real value, MSE-best clipping),
/// whose ratio to the layer's power of two the channel's multiplier absorbs: the runtime arithmetic
/// is the same. The BN multipliers have a per-layer format; bias correction moves the weights'
/// expected rounding error on the calibration inputs into the offsets.
/// </summary>
public static class Quantizer
{
    /// <summary>Up to this weight width (the widest the SIMD kernels take unsplit) every conv is made to accumulate in int32.</summary>
    public const int Int32AccumulatorMaxWeightBits = EdgeResNet.Runtime.Kernels.ConvDispatch.MaxUnsplitWeightBits;

    public static QModel Quantize(Network net, Calibration cal, QuantOptions opt)
    {
        opt.Validate();
        var consumers = Consumers(net);

        var tensors = new Dictionary<string, Tensor>();
        var pads = new Dictionary<string, Layer>();
        var fused = new HashSet<string>();
        var layers = new List<QLayer>();
        var model = new QModel { WeightBits = opt.WeightBits, ActivationBits = opt.ActivationBits, Scheme = opt.Scheme };

        float Max(string name) => cal.MaxAbs.TryGetValue(name, out var m) ? m
            : throw new InvalidOperationException($"no calibration statistics for layer '{name}'; calibrate with this network");
        int ActFrac(string name, bool nonNegative) =>
            ActivationFrac(Max(name), ClipsActivations(opt.ActivationBits) ? cal.Magnitudes[name] : null, opt.OutBitsOf(nonNegative));

        // The source of a layer's input, looking through a ZeroPadding2D (its padding moves into the consumer).
        (Tensor Source, Layer? Pad) InputOf(Layer l, int k = 0)
        {
            string name = l.Inputs[k];
            return pads.TryGetValue(name, out var pad) ? (tensors[pad.Inputs[0]], pad) : (tensors[name], null);
        }

        foreach (var l in net.Layers)
        {
            if (fused.Contains(l.Name)) continue;
            switch (l.Kind)
            {
                case LayerKind.Input:
                    model.InputH = l.OutShape.H; model.InputW = l.OutShape.W; model.InputC = l.OutShape.C;
                    model.Preprocessing = InputPreprocessing.Caffe(cropSize: model.InputH);
                    model.InputFrac = ActFrac(l.Name, nonNegative: false);
                    tensors[l.Name] = new Tensor(0, l.OutShape, model.InputFrac, NonNegative: false, l.Name);
                    break;
                case LayerKind.ZeroPad:
                    if (consumers[l.Name].Any(c => c.Kind is not (LayerKind.Conv2D or LayerKind.MaxPool)))
                        throw new ModelFormatException($"layer '{l.Name}': ZeroPadding2D must feed only Conv2D or MaxPooling2D in the integer network");
                    pads[l.Name] = l;
                    break;
                case LayerKind.Conv2D:
                {
                    var (src, pad) = InputOf(l);
                    var (bn, relu) = FusedAfter(l, consumers);
                    Layer outLayer = relu ?? bn ?? l;
                    if (bn != null) fused.Add(bn.Name);
                    if (relu != null) fused.Add(relu.Name);
                    var q = ConvLayer(l, bn, src, pad, relu != null, ActFrac(outLayer.Name, relu != null), opt, cal);
                    q.Name = l.Name;
                    layers.Add(q);
                    tensors[outLayer.Name] = new Tensor(layers.Count, outLayer.OutShape, q.OutFrac, relu != null, outLayer.Name);
                    break;
                }
                case LayerKind.MaxPool:
                {
                    var (src, pad) = InputOf(l);
                    // The integer max pool reads padding as 0. That equals both ZeroPadding2D and Keras "same"
                    // (padding ignored) only when the input cannot be negative, as after a ReLU.
                    bool padded = pad != null || l.PadTop + l.PadLeft + l.PadBottom + l.PadRight > 0;
                    if (padded && !src.NonNegative)
                        throw new ModelFormatException($"layer '{l.Name}': padded max pooling of a tensor that can be negative is not supported in the integer network");
                    var q = Geometry(new QLayer { Name = l.Name, Op = QOp.MaxPool, Input0 = src.Id, InFrac = src.Frac, OutFrac = src.Frac, OutBits = opt.OutBitsOf(src.NonNegative) }, src.Shape, l, pad);
                    layers.Add(q);
                    tensors[l.Name] = new Tensor(layers.Count, l.OutShape, src.Frac, src.NonNegative, l.Name);
                    break;
                }
                case LayerKind.Add:
                {
                    if (l.Inputs.Length != 2) throw new ModelFormatException($"layer '{l.Name}': the integer Add takes exactly 2 inputs");
                    var a = tensors[l.Inputs[0]];
                    var b = tensors[l.Inputs[1]];
                    var (_, relu) = FusedAfter(l, consumers);
                    if (relu != null) fused.Add(relu.Name);
                    Layer outLayer = relu ?? l;
                    var s = l.OutShape;
                    int frac = ActFrac(outLayer.Name, relu != null);
                    layers.Add(new QLayer
                    {
                        Name = l.Name, Op = QOp.Add, Input0 = a.Id, Input1 = b.Id, InH = s.H, InW = s.W, InC = s.C, OutH = s.H, OutW = s.W, OutC = s.C,
                        InFrac = a.Frac, In1Frac = b.Frac, OutFrac = frac, OutBits = opt.OutBitsOf(relu != null), Relu = relu != null,
                    });
                    tensors[outLayer.Name] = new Tensor(layers.Count, s, frac, relu != null, outLayer.Name);
                    break;
                }
                case LayerKind.GlobalAvgPool:
                {
                    var src = tensors[l.Inputs[0]];
                    int frac = ActFrac(l.Name, src.NonNegative);
                    layers.Add(new QLayer
                    {
                        Name = l.Name, Op = QOp.GlobalAvgPool, Input0 = src.Id, InH = src.Shape.H, InW = src.Shape.W, InC = src.Shape.C,
                        OutH = 1, OutW = 1, OutC = src.Shape.C, InFrac = src.Frac, OutFrac = frac, OutBits = opt.OutBitsOf(src.NonNegative),
                    });
                    tensors[l.Name] = new Tensor(layers.Count, l.OutShape, frac, src.NonNegative, l.Name);
                    break;
                }
                case LayerKind.Dense:
                {
                    var src = tensors[l.Inputs[0]];
                    var q = ConvLayer(l, null, src, null, relu: false, outFrac: 0, opt, cal);
                    q.Name = l.Name;
                    layers.Add(q);
                    tensors[l.Name] = new Tensor(layers.Count, l.OutShape, q.OutFrac, false, l.Name);
                    break;
                }
                case LayerKind.Relu:
                    throw new ModelFormatException($"layer '{l.Name}': a ReLU must follow a BatchNormalization, Conv2D or Add to be fused in the integer network");
                case LayerKind.BatchNorm:
                    throw new ModelFormatException($"layer '{l.Name}': a BatchNormalization must directly follow a Conv2D that feeds nothing else");
            }
        }
        if (layers.Count == 0 || !layers[^1].WideOutput) throw new ModelFormatException("the network must end in Dense");
        if (tensors[net.Output.Name].Id != layers.Count) throw new ModelFormatException("the last layer of the network must be its output");
        model.Layers = layers.ToArray();
        return model;
    }

    /// <param name="Float">The float layer whose output this tensor holds (its calibration statistics).</param>
    sealed record Tensor(int Id, Shape3 Shape, int Frac, bool NonNegative, string Float);

    internal static ILookup<string, Layer> Consumers(Network net) => net.Layers.SelectMany(l => l.Inputs.Select(i => (i, l))).ToLookup(p => p.i, p => p.l);

    /// <summary>The float layers an integer layer takes in with <paramref name="l"/>: after a Conv2D the BatchNorm it alone feeds, after that (or an Add) the ReLU.</summary>
    internal static (Layer? Bn, Layer? Relu) FusedAfter(Layer l, ILookup<string, Layer> consumers)
    {
        Layer? Single(Layer x) => consumers[x.Name].Count() == 1 ? consumers[x.Name].First() : null;
        Layer? bn = l.Kind == LayerKind.Conv2D && Single(l) is { Kind: LayerKind.BatchNorm } b ? b : null;
        Layer? relu = l.Kind is LayerKind.Conv2D or LayerKind.Add && Single(bn ?? l) is { Kind: LayerKind.Relu } r ? r : null;
        return (bn, relu);
    }

    /// <summary>For each integer layer name, the float layer whose output it computes (the last of its fused BatchNorm and ReLU).</summary>
    public static Dictionary<string, string> FloatOutputOf(Network net)
    {
        var consumers = Consumers(net);
        return net.Layers.ToDictionary(l => l.Name, l =>
        {
            var (bn, relu) = FusedAfter(l, consumers);
            return (relu ?? bn ?? l).Name;
        });
    }

    static QLayer Geometry(QLayer q, Shape3 input, Layer l, Layer? pad)
    {
        q.InH = input.H; q.InW = input.W; q.InC = input.C;
        q.OutH = l.OutShape.H; q.OutW = l.OutShape.W; q.OutC = l.OutShape.C;
        q.KernelH = Math.Max(1, l.KernelH); q.KernelW = Math.Max(1, l.KernelW);
        q.StrideH = l.StrideH; q.StrideW = l.StrideW;
        q.PadTop = l.PadTop + (pad?.PadTop ?? 0); q.PadLeft = l.PadLeft + (pad?.PadLeft ?? 0);
        q.PadBottom = l.PadBottom + (pad?.PadBottom ?? 0); q.PadRight = l.PadRight + (pad?.PadRight ?? 0);
        return q;
    }

    /// <summary>Conv (or Dense) with its BN: quantised weights, per-channel multiplier/offset and shifts, and the overflow proof.</summary>
    static QLayer ConvLayer(Layer l, Layer? bn, Tensor src, Layer? pad, bool relu, int outFrac, QuantOptions opt, Calibration cal)
    {
        bool dense = l.Kind == LayerKind.Dense;
        var q = dense
            ? new QLayer { InH = 1, InW = 1, InC = src.Shape.C, OutH = 1, OutW = 1, OutC = l.OutShape.C }
            : Geometry(new QLayer(), src.Shape, l, pad);
        q.Op = QOp.Conv;
        q.Input0 = src.Id;
        q.InFrac = src.Frac;
        q.Relu = relu;
        q.WeightBits = opt.BitsOf(l.Name);
        int cout = q.OutC, k = q.ReduceSize;

        // Per output channel: y = scale * conv(x) + shift (BN, with the conv bias moved into the shift).
        var scale = new double[cout];
        var shift = new double[cout];
        for (int c = 0; c < cout; c++)
        {
            double s = bn == null ? 1.0 : bn.Gamma[c] / Math.Sqrt((double)bn.Variance[c] + bn.Epsilon);
            scale[c] = s;
            shift[c] = bn == null ? l.Bias[c] : s * l.Bias[c] + bn.Beta[c] - bn.Mean[c] * s;
        }
        bool folded = opt.Scheme == BnScheme.Folded && bn != null;
        // What the multiplier carries besides the weight step: the BN scale in the separate scheme, else 1.
        double MultiplierScale(int c) => bn != null && !folded ? scale[c] : 1.0;

        // Weights as [cout][k] in (ky, kx, ci) order from HWIO / [in][out]; folded: times the BN scale.
        var w = new double[cout * k];
        for (int i = 0; i < k; i++)
            for (int c = 0; c < cout; c++)
                w[c * k + i] = l.Kernel[i * cout + c] * (folded ? scale[c] : 1.0);

        // The weight step of each channel: w ~ q * step. Per layer it is one power of two; per channel the
        // MSE-best clipping of each channel's own range, and 2^WeightFrac * step (at most 1) joins the multiplier.
        long wMax = (1L << (q.WeightBits - 1)) - 1;
        var step = new double[cout];
        if (opt.Scales == WeightScales.PerChannel)
            for (int c = 0; c < cout; c++) step[c] = ChannelStep(w.AsSpan(c * k, k), wMax, opt.WeightFormat);
        else
            Array.Fill(step, Math.Pow(2, -(opt.WeightFormat == WeightFormat.Max ? FracFor(w.Max(Math.Abs), q.WeightBits) : WeightFrac(w, q.WeightBits))));
        // Weights up to 10 bits must keep the accumulator in int32 (the board's fast path): where the
        // proven bound does not fit, give up a fraction bit (double every step). Wider weights accumulate in 64 bits.
        q.Weights = new short[cout * q.WeightStride];
        for (; ; )
        {
            for (int c = 0; c < cout; c++)
                for (int i = 0; i < k; i++)
                    q.Weights[c * q.WeightStride + i] = (short)Math.Clamp(RoundHalfUp(w[c * k + i] / step[c]), -wMax, wMax);
            q.AccumulatorBits = AccumulatorBits(q, src.NonNegative, opt.OutBitsOf(src.NonNegative));
            if (q.WeightBits > Int32AccumulatorMaxWeightBits || q.AccumulatorBits <= 32) break;
            for (int c = 0; c < cout; c++) step[c] *= 2;
        }
        q.WeightFrac = (int)Math.Floor(-Math.Log2(step.Max()));
        var channelRatio = step.Select(st => st * Math.Pow(2, q.WeightFrac)).ToArray(); // 1 for per-layer steps

        int accFrac = q.WeightFrac + q.InFrac;
        var multiplier = Enumerable.Range(0, cout).Select(c => MultiplierScale(c) * channelRatio[c]).ToArray();
        if (multiplier.All(m => m == 1.0))
        {
            q.MultiplierBits = 0;
            q.MultiplierFrac = 0;
            q.Multipliers = Enumerable.Repeat(1, cout).ToArray();
        }
        else
        {
            q.MultiplierBits = opt.MultiplierBits;
            q.MultiplierFrac = FracFor(multiplier.Max(Math.Abs), opt.MultiplierBits);
            long mMax = (1L << (opt.MultiplierBits - 1)) - 1;
            q.Multipliers = multiplier.Select(m => (int)Math.Clamp(RoundHalfUp(m * Math.Pow(2, q.MultiplierFrac)), -mMax, mMax)).ToArray();
        }
        if (opt.BiasCorrection)
        {
            // The output's expected error on the calibration inputs, sum_i (w_realised - w) * E[x_i], moves into the shift.
            var inputs = cal.Moments.TryGetValue(src.Float, out var mo) ? mo
                : throw new InvalidOperationException($"no calibration moments for tensor '{src.Float}'; calibrate with this network");
            for (int c = 0; c < cout; c++)
            {
                double realised = Math.Pow(2, -q.WeightFrac - q.MultiplierFrac) * q.Multipliers[c], error = 0;
                for (int i = 0; i < k; i++)
                    error += (q.Weights[c * q.WeightStride + i] * realised - w[c * k + i] * MultiplierScale(c)) * inputs.Mean(i % q.InC);
                shift[c] -= error;
            }
        }
        int sumFrac = accFrac + q.MultiplierFrac;
        int offsetFrac = Math.Min(sumFrac, FracFor(shift.Max(Math.Abs), 32));
        q.Offsets = shift.Select(t => (int)Math.Clamp(RoundHalfUp(t * Math.Pow(2, offsetFrac)), int.MinValue, int.MaxValue)).ToArray();
        q.OffsetShift = sumFrac - offsetFrac;

        if (q.AccumulatorBits + Math.Max(q.MultiplierBits, 2) > 63)
            throw new InvalidOperationException($"layer '{l.Name}': accumulator ({q.AccumulatorBits} bits) times multiplier ({q.MultiplierBits} bits) could overflow 64 bits");
        if (dense)
        {
            // The logits: int32, exact when the proven bound allows, else shifted just enough to fit
            // (the accumulator times the multiplier, whose magnitude is below 2^(MultiplierBits - 1), plus the offset).
            q.WideOutput = true;
            q.OutBits = 32;
            q.OutShift = Math.Max(0, q.AccumulatorBits + Math.Max(q.MultiplierBits - 1, 0) + 1 - 32);
            q.OutFrac = sumFrac - q.OutShift;
        }
        else
        {
            q.OutBits = opt.OutBitsOf(relu);
            q.OutFrac = outFrac;
            q.OutShift = sumFrac - outFrac;
        }
        return q;
    }

    /// <summary>
    /// Bits of the largest |accumulator| any input can produce (sign bit included). Inputs known to
    /// be non-negative (after ReLU) give the sign-aware bound max(sum of positive w, sum of |negative w|) * xmax.
    /// </summary>
    /// <param name="inputBits">The signed width the input saturates to (its layer's OutBits).</param>
    public static int AccumulatorBits(QLayer q, bool nonNegativeInput, int inputBits)
    {
        long xPos = (1L << (inputBits - 1)) - 1, xNeg = 1L << (inputBits - 1);
        long worst = 0;
        for (int c = 0; c < q.OutC; c++)
        {
            long pos = 0, neg = 0;
            for (int i = 0; i < q.ReduceSize; i++)
            {
                int v = q.Weights[c * q.WeightStride + i];
                if (v > 0) pos += v; else neg -= v;
            }
            long bound = nonNegativeInput ? Math.Max(pos, neg) * xPos : (pos + neg) * xNeg;
            worst = Math.Max(worst, bound);
        }
        return BitsForMagnitude(worst);
    }

    /// <summary>Signed bits to hold any value in [-m, m].</summary>
    public static int BitsForMagnitude(long m) => 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)m) + 1;

    /// <summary>The most fraction bits such that |max| * 2^f still fits a signed value of the given width.</summary>
    public static int FracFor(double maxAbs, int bits)
    {
        if (maxAbs <= 0 || double.IsNaN(maxAbs)) return bits - 1;
        return (int)Math.Floor(Math.Log2(((1L << (bits - 1)) - 1) / maxAbs));
    }

    /// <summary>
    /// Whether activation formats may clip (the least squared error one, on calibration's <see cref="Calibration.Magnitudes"/>):
    /// below 16 bits. At 16 the rounding is already so fine that clipping has little to win, and keeping the no-clipping
    /// formats keeps 16-bit images byte for byte, so every figure measured on them stands.
    /// </summary>
    public static bool ClipsActivations(int activationBits) => activationBits < 16;

    /// <summary>
    /// A tensor's format: the least squared error on the calibration inputs among the no-clipping one and three with
    /// 1-3 more fraction bits (they clip the largest values), as for weights. Without a histogram: the no-clipping one.
    /// </summary>
    public static int ActivationFrac(double maxAbs, MagnitudeHistogram? magnitudes, int bits)
    {
        int f0 = FracFor(maxAbs, bits);
        if (magnitudes == null) return f0;
        double qMax = (1L << (bits - 1)) - 1;
        return LeastErrorFrac(f0, step => magnitudes.SquaredError(step, qMax * step));
    }

    /// <summary>The weight format with the least squared error among the no-clipping one and three with more fraction bits (they clip outliers).</summary>
    static int WeightFrac(double[] w, int bits)
    {
        long qMax = (1L << (bits - 1)) - 1;
        return LeastErrorFrac(FracFor(w.Max(Math.Abs), bits), step =>
        {
            double err = 0;
            foreach (var v in w)
            {
                double d = v - Math.Clamp(RoundHalfUp(v / step), -qMax, qMax) * step;
                err += d * d;
            }
            return err;
        });
    }

    /// <summary>Of the formats f0 (no clipping) to f0 + 3, the one whose step 2^-f gives the least <paramref name="squaredError"/> (the first on a tie).</summary>
    static int LeastErrorFrac(int f0, Func<double, double> squaredError)
    {
        int best = f0;
        double bestErr = double.MaxValue;
        for (int f = f0; f <= f0 + 3; f++)
        {
            double err = squaredError(Math.Pow(2, -f));
            if (err < bestErr) { bestErr = err; best = f; }
        }
        return best;
    }

    /// <summary>
    /// One channel's weight step: its largest |w| over the largest code (no clipping), or with
    /// <see cref="WeightFormat.Mse"/> the least squared error over clipping that range to 100 %, 97.5 % ... 30 %.
    /// </summary>
    static double ChannelStep(ReadOnlySpan<double> w, long qMax, WeightFormat format)
    {
        double max = 0;
        foreach (var v in w) max = Math.Max(max, Math.Abs(v));
        if (max == 0) return 1;
        if (format == WeightFormat.Max) return max / qMax;
        double best = max / qMax, bestErr = double.MaxValue;
        for (int a = 40; a >= 12; a--)
        {
            double st = max * a / 40 / qMax, err = 0;
            foreach (var v in w)
            {
                double d = v - Math.Clamp(RoundHalfUp(v / st), -qMax, qMax) * st;
                err += d * d;
            }
            if (err < bestErr) { bestErr = err; best = st; }
        }
        return best;
    }

    /// <summary>Whether the layer's output is unsigned: one out bit more than the activation bits (<see cref="QuantOptions.OutBitsOf"/>).</summary>
    public static bool IsUnsigned(QLayer l, int activationBits) => !l.WideOutput && l.OutBits > activationBits;

    /// <summary>"8-bit activations (unsigned after a ReLU)": read from the layers, not the header, so an image packed before ReLU outputs were unsigned says signed.</summary>
    public static string DescribeActivations(QModel m) =>
        $"{m.ActivationBits}-bit activations" + (m.Layers.Any(l => IsUnsigned(l, m.ActivationBits)) ? " (unsigned after a ReLU)" : "");

    /// <summary>Rounds half up, as <see cref="FixedPoint.RoundShift"/> does.</summary>
    public static long RoundHalfUp(double x) => (long)Math.Floor(x + 0.5);

    /// <summary>Float HWC tensor to the input format (round half up, saturate).</summary>
    public static short[] QuantizeInput(ReadOnlySpan<float> x, QModel model)
    {
        var q = new short[x.Length];
        double scale = Math.Pow(2, model.InputFrac);
        for (int i = 0; i < x.Length; i++)
            q[i] = (short)FixedPoint.Saturate(RoundHalfUp(x[i] * scale), model.ActivationBits);
        return q;
    }
}
