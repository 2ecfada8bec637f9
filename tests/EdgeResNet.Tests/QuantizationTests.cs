using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.KernelCheck;
using EdgeResNet.Runtime.Kernels;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class QuantizationTests
{
    static float[] RandomInput(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();

    /// <summary>The tiny residual network, calibrated on random inputs and quantised.</summary>
    internal static (Network Net, FloatReference Float, QModel Model) TinyQuantized(QuantOptions opt, int seed = 5)
    {
        using var m = TinyTfjsModel.Residual(seed);
        var net = TfjsImporter.Load(m.ModelJson);
        var reference = new FloatReference(net);
        var rng = new Random(seed);
        var inputs = Enumerable.Range(0, 16).Select(_ => RandomInput(rng, net.Input.OutShape.Size)).ToArray();
        var cal = Calibration.Run(reference, inputs.Length, i => inputs[i], threads: 1);
        return (net, reference, Quantizer.Quantize(net, cal, opt));
    }

    [TestMethod]
    public void SimulatorFollowsTheFloatModelWithinQuantisationError()
    {
        foreach (var scheme in new[] { BnScheme.Separate, BnScheme.Folded })
        {
            var (net, reference, model) = TinyQuantized(new QuantOptions(12, 16, scheme));
            var sim = new IntegerSimulator(model);
            var rng = new Random(11);
            double scale = Math.Pow(2, -model.Output.OutFrac), worst = 0, range = 0;
            for (int t = 0; t < 20; t++)
            {
                var x = RandomInput(rng, net.Input.OutShape.Size);
                var f = reference.Forward(x);
                var q = sim.Run(Quantizer.QuantizeInput(x, model));
                for (int i = 0; i < f.Length; i++)
                {
                    worst = Math.Max(worst, Math.Abs(q[i] * scale - f[i]));
                    range = Math.Max(range, Math.Abs(f[i]));
                }
            }
            // 12-bit weights and 16-bit activations: errors well under 1% of the logit range.
            Assert.IsLessThan(0.01 * range, worst, $"{scheme}: worst |logit error| {worst} against range {range}");
            Assert.IsGreaterThan(0.0, worst, $"{scheme}: quantisation must change something");
        }
    }

    [TestMethod]
    public void ActivationsAfterAReluUseTheSignBitUnderSixteenBits()
    {
        foreach (int bits in new[] { 8, 16 })
        {
            var (net, _, model) = TinyQuantized(new QuantOptions(10, bits, BnScheme.Separate));
            int unsigned = bits < 16 ? bits + 1 : bits;
            int OutBitsOf(int tensor) => tensor == 0 ? bits : model.Layers[tensor - 1].OutBits;
            foreach (var l in model.Layers.Where(l => !l.WideOutput))
            {
                int expected = l.Op is QOp.MaxPool or QOp.GlobalAvgPool ? OutBitsOf(l.Input0) : l.Relu ? unsigned : bits;
                Assert.AreEqual(expected, l.OutBits, $"{bits}-bit activations, layer {l.Name} ({l.Op}{(l.Relu ? "+ReLU" : "")})");
            }
            Assert.IsTrue(model.Layers.Any(l => l.Relu) && model.Layers.Any(l => l.Op == QOp.Conv && !l.Relu && !l.WideOutput), "both kinds of tensor");

            // The unsigned range is used: some ReLU output of the simulator goes past the signed 8-bit maximum.
            if (bits == 8)
            {
                var sim = new IntegerSimulator(model);
                var rng = new Random(4);
                int largest = 0;
                for (int t = 0; t < 8; t++)
                    sim.Run(Quantizer.QuantizeInput(RandomInput(rng, net.Input.OutShape.Size), model), (i, y, _) =>
                    {
                        if (model.Layers[i].Relu && !model.Layers[i].WideOutput) largest = Math.Max(largest, y.Max(v => (int)v));
                    });
                Assert.IsGreaterThan(127, largest, "a ReLU tensor of 8-bit activations reaches past 127");
                Assert.IsLessThanOrEqualTo(255, largest, "and stays within 8 unsigned bits");
            }
        }
    }

    [TestMethod]
    public void AnActivationFormatClipsARareOutlierAndKeepsADenseTop()
    {
        var rng = new Random(7);
        var dense = Enumerable.Range(0, 400_000).Select(_ => (float)(rng.NextDouble() * 1.5)).ToArray();
        var tailed = Enumerable.Range(0, 400_000).Select(_ => (float)rng.NextDouble()).Append(1.9f).ToArray();
        int Chosen(float[] values, int bits)
        {
            var h = new MagnitudeHistogram();
            h.Add(values);
            return Quantizer.ActivationFrac(values.Max(), h, bits);
        }
        // 400,000 values spread evenly over [0, 1.5): the no-clipping format (one more fraction bit would clip a third of them).
        // Over [0, 1) with one at 1.9: halving the step of the 400,000 is worth clipping that one to 1.
        Assert.AreEqual(7, Quantizer.FracFor(tailed.Max(), 9));
        Assert.AreEqual(Quantizer.FracFor(dense.Max(), 9), Chosen(dense, 9));
        Assert.AreEqual(8, Chosen(tailed, 9));
        Assert.AreEqual(Quantizer.FracFor(100, 9), Quantizer.ActivationFrac(100, null, 9), "no histogram: no clipping");

        // Quantised at 8 bits, some tensor of the tiny network takes a clipping format (more fraction bits than its largest
        // calibration value allows), and none takes fewer; a max pool keeps its input's format.
        using var m = TinyTfjsModel.Residual(5);
        var net = TfjsImporter.Load(m.ModelJson);
        var rng2 = new Random(5);
        var inputs = Enumerable.Range(0, 16).Select(_ => RandomInput(rng2, net.Input.OutShape.Size)).ToArray();
        var cal = Calibration.Run(new FloatReference(net), inputs.Length, i => inputs[i], threads: 1);
        var model = Quantizer.Quantize(net, cal, new QuantOptions(10, 8, BnScheme.Separate));
        var floatOf = Quantizer.FloatOutputOf(net);
        var extra = model.Layers.Where(l => !l.WideOutput && l.Op != QOp.MaxPool)
            .Select(l => l.OutFrac - Quantizer.FracFor(cal.MaxAbs[floatOf[l.Name]], l.OutBits)).ToList();
        Assert.IsTrue(extra.Any(e => e > 0), "8 bits: some tensor clips its largest values");
        Assert.IsTrue(extra.All(e => e >= 0 && e <= 3), "never fewer fraction bits than no clipping, at most 3 more");
    }

    [TestMethod]
    public void FewerWeightBitsGiveLargerErrors()
    {
        double Error(int bits)
        {
            var (net, reference, model) = TinyQuantized(new QuantOptions(bits, 16, BnScheme.Separate));
            var sim = new IntegerSimulator(model);
            var rng = new Random(2);
            double scale = Math.Pow(2, -model.Output.OutFrac), sum = 0;
            for (int t = 0; t < 10; t++)
            {
                var x = RandomInput(rng, net.Input.OutShape.Size);
                var f = reference.Forward(x);
                var q = sim.Run(Quantizer.QuantizeInput(x, model));
                for (int i = 0; i < f.Length; i++) sum += Math.Abs(q[i] * scale - f[i]);
            }
            return sum;
        }
        Assert.IsGreaterThan(Error(12), Error(4));
    }

    [TestMethod]
    [DataRow(16)]
    [DataRow(8)]
    public void AccumulatorBoundIsProvenAndReached(int activationBits)
    {
        var (_, _, model) = TinyQuantized(new QuantOptions(10, activationBits, BnScheme.Separate));
        foreach (var l in model.Layers.Where(l => l.Op == QOp.Conv))
        {
            bool nonNegative = l.Input0 != 0; // every conv input but the network input follows a ReLU here
            // The largest input: 2^B - 1 after a ReLU below 16 bits (unsigned), else the signed B-bit range.
            long xPos = nonNegative && activationBits < 16 ? (1L << activationBits) - 1 : (1L << (activationBits - 1)) - 1;
            long xNeg = nonNegative ? xPos : 1L << (activationBits - 1);
            // The worst input for each channel: xmax where the weight pushes the sum up (or, signed, down too).
            long worst = 0;
            for (int c = 0; c < l.OutC; c++)
            {
                long pos = 0, neg = 0;
                for (int i = 0; i < l.ReduceSize; i++)
                {
                    long w = l.Weights[c * l.WeightStride + i];
                    if (w > 0) pos += w * xPos; else neg += -w * xNeg;
                }
                worst = Math.Max(worst, nonNegative ? Math.Max(pos, neg) : pos + neg);
            }
            Assert.IsLessThanOrEqualTo((1L << (l.AccumulatorBits - 1)) - 1, worst, $"{activationBits} bits, {l.Name}: the bound must hold");
            Assert.IsGreaterThan((1L << (l.AccumulatorBits - 2)) - 1, worst, $"{activationBits} bits, {l.Name}: the bound must be tight");
            Assert.IsLessThanOrEqualTo(32, l.AccumulatorBits, $"{l.Name}: 10-bit weights must accumulate in int32");
        }
    }

    [TestMethod]
    public void FastConvIsBitExactWithTheReference()
    {
        if (!FastConv.IsSupported) Assert.Inconclusive("this CPU has neither AVX2 nor arm64 NEON");
        // the same cases run on arm64 under qemu (firmware/ci/arm64-qemu.sh runs edgeresnet-kernel-check)
        foreach (var r in KernelCases.Run())
        {
            var l = r.Layer;
            Assert.AreEqual(l.WeightBits > ConvDispatch.MaxUnsplitWeightBits ? ConvKernel.SimdSplit : ConvKernel.Simd, r.Kernel);
            if (l.WeightBits <= 7 && l.KernelH == 3 && l.InC % 16 == 0) Assert.AreEqual(0, FastConv.Im2ColShortsPerPixel(l, false), "a 3x3 layer within the 32-bit bound is read in place (implicit im2col)");
            CollectionAssert.AreEqual(r.Expected, r.Actual, r.Name);
            CollectionAssert.AreEqual(r.ExpectedWide, r.ActualWide, r.Name + " (wide)");
            Assert.IsTrue(r.ProducesSomething, "the test layer must produce something");
        }
    }

    [TestMethod]
    public void WeightsUnpackIntoEveryKernelLayoutAsTheirRows()
    {
        var rng = new Random(21);
        // whole blocks of 16 with 32-value slabs and tails of 16 or less (the AVX-512 VBMI path), and every other path
        foreach (var (channels, reduce, bits) in new[] { (13, 147, 10), (8, 4608, 10), (16, 64, 10), (5, 27, 10), (11, 100, 7), (9, 48, 16), (24, 160, 10), (40, 576, 10),
                     (32, 1152, 10), (48, 200, 10), (16, 4608, 10), (33, 48, 10), (40, 64, 10) })
        {
            int stride = (reduce + 15) & ~15, rowBytes = BitPacking.PackedBytes(reduce, bits);
            var rows = new short[channels * stride];
            var packed = new byte[channels * rowBytes];
            for (int c = 0; c < channels; c++)
            {
                var row = rows.AsSpan(c * stride, reduce);
                for (int k = 0; k < reduce; k++) row[k] = (short)rng.Next(-(1 << (bits - 1)), 1 << (bits - 1));
                BitPacking.Pack(row, bits, packed.AsSpan(c * rowBytes, rowBytes));
            }
            foreach (int block in new[] { 1, 8, 16 })
            {
                var dest = new short[WeightLayout.Shorts(channels, stride, block)];
                dest.AsSpan().Fill(12345); // padding channels must come out zero
                WeightLayout.Unpack(packed, bits, rowBytes, reduce, stride, channels, block, new short[stride], dest);
                CollectionAssert.AreEqual(WeightLayout.FromRows(rows, channels, stride, block), dest, $"{channels} x {reduce} at {bits} bits, block {block}");
                if (block == 1) continue;
                // in pieces, as the engine reads a group wider than its packed bytes: of 8 channels; of 24 (a whole block of 16
                // after an odd octet's half); and 8 then the rest (whole blocks of 16 from a piece that starts mid-block)
                foreach (int[] pieces in new[] { Enumerable.Repeat(8, (channels + 7) / 8).ToArray(), Enumerable.Repeat(24, (channels + 23) / 24).ToArray(), new[] { 8, channels } })
                {
                    dest.AsSpan().Fill(12345);
                    int c0 = 0;
                    foreach (int piece in pieces)
                    {
                        if (c0 >= channels) break;
                        int n = Math.Min(piece, channels - c0);
                        WeightLayout.Unpack(packed.AsSpan(c0 * rowBytes, n * rowBytes), bits, rowBytes, reduce, stride, n, block, new short[stride], dest, firstChannel: c0);
                        c0 += n;
                    }
                    CollectionAssert.AreEqual(WeightLayout.FromRows(rows, channels, stride, block), dest, $"{channels} x {reduce} at {bits} bits, block {block}, in pieces of {string.Join(", ", pieces)}");
                }
            }
        }
    }

    [TestMethod]
    public void FastAddIsBitExactWithTheReference()
    {
        var rng = new Random(12);
        // right shifts only, with and without ReLU (the AVX-512 int16 path), and left shifts (the widening path)
        foreach (var (inFrac, in1Frac, outFrac, relu, bits) in new[] { (10, 11, 10, true, 16), (12, 9, 11, false, 16), (8, 8, 10, true, 12), (11, 13, 9, false, 10),
                     (10, 10, 10, false, 16), (15, 11, 10, false, 16), (12, 10, 10, true, 16), (25, 10, 10, false, 16), (12, 10, 10, true, 12), (13, 11, 10, false, 11) })
        {
            var l = new QLayer { Op = QOp.Add, InFrac = inFrac, In1Frac = in1Frac, OutFrac = outFrac, Relu = relu, OutBits = bits };
            var a = Enumerable.Range(0, 53).Select(_ => (short)rng.Next(-32768, 32768)).ToArray();
            var b = Enumerable.Range(0, 53).Select(_ => (short)rng.Next(-32768, 32768)).ToArray();
            var expected = a.Zip(b, (x, y) => ReferenceKernels.AddOne(l, x, y)).ToArray();
            var actual = new short[53];
            FastAdd.AddPixels(l, a, 53, b, 53, actual, 53, 1, 53);
            CollectionAssert.AreEqual(expected, actual, $"fractions {inFrac},{in1Frac}->{outFrac} relu {relu} bits {bits}");
            // runs of 19 channels (a vector and a tail), a run every 19 values of a, 23 of b and 29 of y, as the engine adds a group's band;
            // then runs of 70 (two 32-channel vectors and a tail), a run every 70, 80 and 90 values
            foreach (var (n, strideA, strideB, strideY) in new[] { (19, 19, 23, 29), (70, 70, 80, 90) })
            {
                const int pixels = 2;
                var pa = Enumerable.Range(0, strideA * pixels).Select(_ => (short)rng.Next(-32768, 32768)).ToArray();
                var pb = Enumerable.Range(0, strideB * pixels).Select(_ => (short)rng.Next(-32768, 32768)).ToArray();
                var ys = Enumerable.Repeat((short)7, strideY * pixels).ToArray();
                FastAdd.AddPixels(l, pa, strideA, pb, strideB, ys, strideY, pixels, n);
                for (int p = 0; p < pixels; p++)
                    for (int i = 0; i < strideY; i++)
                        Assert.AreEqual(i < n ? ReferenceKernels.AddOne(l, pa[p * strideA + i], pb[p * strideB + i]) : (short)7, ys[p * strideY + i],
                            $"fractions {inFrac},{in1Frac}->{outFrac}, runs of {n}, run {p}, channel {i}: the add writes its runs and nothing between them");
                Assert.ThrowsExactly<ArgumentException>(() => FastAdd.AddPixels(l, pa, strideA, pb, strideB, ys, strideY, 3, n)); // a third run is past the buffers
            }
        }
    }

    /// <summary>Odd channel counts (the vector tail), every kernel/stride/padding mix, negative values (padding counts as 0).</summary>
    [TestMethod]
    public void FastMaxPoolIsBitExactWithTheReference()
    {
        var rng = new Random(13);
        for (int trial = 0; trial < 300; trial++)
        {
            int k = rng.Next(1, 5), stride = rng.Next(1, 4), c = rng.Next(1, 41), h = rng.Next(k, 12), w = rng.Next(k, 12);
            var l = new QLayer
            {
                Op = QOp.MaxPool, InH = h, InW = w, InC = c, OutC = c, KernelH = k, KernelW = k, StrideH = stride, StrideW = stride,
                PadTop = rng.Next(k), PadLeft = rng.Next(k), PadBottom = rng.Next(k), PadRight = rng.Next(k),
            };
            l.OutH = (h + l.PadTop + l.PadBottom - k) / stride + 1;
            l.OutW = (w + l.PadLeft + l.PadRight - k) / stride + 1;
            var input = Enumerable.Range(0, h * w * c).Select(_ => (short)rng.Next(trial % 2 == 0 ? -32768 : -5, 32768)).ToArray();
            var expected = new short[l.OutSize];
            var actual = new short[l.OutSize];
            ReferenceKernels.MaxPool(l, input, 0, expected, 0, l.OutH, 0);
            FastPool.MaxPool(l, input, 0, actual, 0, l.OutH, 0);
            CollectionAssert.AreEqual(expected, actual, $"{h}x{w}x{c} k{k} s{stride} pads {l.PadTop},{l.PadLeft},{l.PadBottom},{l.PadRight}");
        }
    }

    /// <summary>Channel counts with a vector tail, both signs of the format change (a divide by n or by n x 2^k), saturation, one pixel.</summary>
    [TestMethod]
    public void FastGlobalAvgPoolIsBitExactWithTheReference()
    {
        var rng = new Random(17);
        for (int trial = 0; trial < 200; trial++)
        {
            int h = rng.Next(1, 9), w = rng.Next(1, 9), c = rng.Next(1, 70), inFrac = rng.Next(4, 12);
            var l = new QLayer { Op = QOp.GlobalAvgPool, InH = h, InW = w, InC = c, OutH = 1, OutW = 1, OutC = c, InFrac = inFrac, OutFrac = inFrac + rng.Next(-3, 4), OutBits = rng.Next(2) == 0 ? 16 : 10 };
            var input = Enumerable.Range(0, h * w * c).Select(_ => (short)rng.Next(trial % 2 == 0 ? -32768 : 0, 32768)).ToArray();
            var expected = new short[c];
            var actual = new short[c];
            ReferenceKernels.GlobalAvgPool(l, input, expected);
            FastPool.GlobalAvgPool(l, input, actual);
            CollectionAssert.AreEqual(expected, actual, $"{h}x{w}x{c}, fractions {l.InFrac}->{l.OutFrac}, {l.OutBits} bits");
        }
    }

    [TestMethod]
    public void FixedPointRoundsHalfUpAndSaturates()
    {
        Assert.AreEqual(2, FixedPoint.RoundShift(3, 1));   // 1.5 -> 2
        Assert.AreEqual(-1, FixedPoint.RoundShift(-3, 1)); // -1.5 -> -1
        Assert.AreEqual(12, FixedPoint.RoundShift(3, -2));
        Assert.AreEqual(3, FixedPoint.RoundDiv(5, 2));   // 2.5 -> 3
        Assert.AreEqual(-2, FixedPoint.RoundDiv(-5, 2));
        Assert.AreEqual(-2, FixedPoint.RoundDiv(-7, 3));
        Assert.AreEqual(32767, FixedPoint.Saturate(40000, 16));
        Assert.AreEqual(-512, FixedPoint.Saturate(-9999, 10));
        Assert.AreEqual(0, FixedPoint.Requantize(-100, 3, 0, 0, 0, relu: true));
    }
}
