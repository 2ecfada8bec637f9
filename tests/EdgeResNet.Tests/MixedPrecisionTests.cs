using EdgeResNet.Common;
using EdgeResNet.Flashing.Emulation;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>Per-channel weight steps, bias correction, per-layer widths and the flash-budget search.</summary>
[TestClass]
public sealed class MixedPrecisionTests
{
    /// <summary>Sum over the inputs and logits of |integer logit - float logit|.</summary>
    static double LogitError(Network net, Calibration cal, float[][] inputs, QuantOptions options)
    {
        var model = Quantizer.Quantize(net, cal, options);
        var sim = new IntegerSimulator(model);
        var reference = new FloatReference(net);
        double scale = Math.Pow(2, -model.Output.OutFrac), sum = 0;
        foreach (var x in inputs)
        {
            var f = reference.Forward(x);
            var q = sim.Run(Quantizer.QuantizeInput(x, model));
            for (int i = 0; i < f.Length; i++) sum += Math.Abs(q[i] * scale - f[i]);
        }
        return sum;
    }

    [TestMethod]
    public void PerChannelStepsCutTheErrorOfLowWidths()
    {
        var (net, cal, inputs) = MiniResNet.Calibrated(3);
        foreach (var scheme in new[] { BnScheme.Separate, BnScheme.Folded })
        {
            double perLayer = LogitError(net, cal, inputs, new QuantOptions(4, 16, scheme));
            double perChannel = LogitError(net, cal, inputs, new QuantOptions(4, 16, scheme, Scales: WeightScales.PerChannel));
            Assert.IsLessThan(perLayer, perChannel, $"{scheme}: 4-bit per-channel steps must beat one step per layer");
        }
        // Per channel, each output channel has its own multiplier (the per-layer folded scheme has none).
        var folded = Quantizer.Quantize(net, cal, new QuantOptions(4, 16, BnScheme.Folded, Scales: WeightScales.PerChannel));
        Assert.IsTrue(folded.Layers.Where(l => l.Op == QOp.Conv).All(l => l.MultiplierBits > 0 && l.Multipliers.Distinct().Count() > 1));
        Assert.IsTrue(Quantizer.Quantize(net, cal, new QuantOptions(4, 16, BnScheme.Folded)).Layers.Where(l => l.Op == QOp.Conv).All(l => l.MultiplierBits == 0));
    }

    [TestMethod]
    public void BiasCorrectionRemovesTheMeanErrorOfALayerOnTheCalibrationInputs()
    {
        var (net, cal, inputs) = MiniResNet.Calibrated(3, mean: 60);
        // conv1 reads the network input, so its error is its own: the per-channel mean error over the calibration inputs.
        double MeanError(bool correct)
        {
            var model = Quantizer.Quantize(net, cal, new QuantOptions(3, 16, BnScheme.Separate, Scales: WeightScales.PerChannel, BiasCorrection: correct));
            var conv1 = model.Layers[0];
            var reference = new FloatReference(net);
            var sim = new IntegerSimulator(model);
            var sums = new double[conv1.OutC];
            foreach (var x in inputs)
            {
                float[] f = [];
                reference.Forward(x, (l, output) => { if (l.Name == "bn_conv1") f = (float[])output.Clone(); });
                short[] q = [];
                // The integer conv1 fuses the ReLU: compare where the float value is positive, both sides unclipped.
                sim.Run(Quantizer.QuantizeInput(x, model), (layer, output, _) => { if (layer == 0) q = (short[])output.Clone(); });
                for (int i = 0; i < f.Length; i++)
                    if (f[i] > 0 && q[i] > 0) sums[i % conv1.OutC] += q[i] * Math.Pow(2, -conv1.OutFrac) - f[i];
            }
            return sums.Sum(Math.Abs);
        }
        double without = MeanError(false), with = MeanError(true);
        Assert.IsLessThan(without / 2, with, $"mean error {with} with bias correction against {without} without");
    }

    [TestMethod]
    public void TheFlashBudgetSearchFitsTheBudgetAndSpendsBitsWhereTheyPay()
    {
        var (net, cal, inputs) = MiniResNet.Calibrated(3);
        var options = new QuantOptions(8, 16, BnScheme.Separate, Scales: WeightScales.PerChannel, BiasCorrection: true);
        var s = MixedPrecision.Measure(net, cal, options, inputs.Length, i => inputs[i], threads: 2);
        for (int l = 0; l < s.Names.Length; l++)
            Assert.IsGreaterThan(s.LogitNoise[l][MixedPrecision.MaxBits], s.LogitNoise[l][MixedPrecision.MinBits], $"{s.Names[l]}: 2 bits must be noisier than 16");
        long smallest = FlashImageWriter.ImageBytes(s.Layers, _ => MixedPrecision.MinBits), largest = FlashImageWriter.ImageBytes(s.Layers, _ => MixedPrecision.MaxBits);
        foreach (long budget in new[] { smallest, (smallest + largest) / 2, largest })
        {
            var choice = MixedPrecision.Choose(s, budget);
            var model = Quantizer.Quantize(net, cal, options with { LayerBits = choice.Widths });
            long bytes = FlashImageWriter.ToBytes(model).LongLength;
            Assert.AreEqual(choice.ImageBytes, bytes, "the search's image size is the writer's");
            Assert.IsLessThanOrEqualTo(budget, bytes);
            if (budget == (smallest + largest) / 2) Assert.IsGreaterThan(1, choice.Widths.Bits.Values.Distinct().Count(), "a budget between the extremes mixes widths");
        }
        // More budget never predicts more noise.
        Assert.IsLessThanOrEqualTo(MixedPrecision.Choose(s, (smallest + largest) / 2).PredictedLogitNoise, MixedPrecision.Choose(s, largest).PredictedLogitNoise);
        var e = Assert.ThrowsExactly<UsageException>(() => MixedPrecision.Choose(s, smallest - 1));
        StringAssert.Contains(e.Message, $"give at least that");
    }

    [TestMethod]
    public void AnEmulated32MBW25Q256JVHoldsTwoMixedWidthImagesOf16MBInItsABSlots()
    {
        // A wide mini network at mixed widths makes an image just under 16 MB, the budget of one slot on a 32 MB chip.
        var options = MiniResNet.MixedOptions();
        int width = 31;
        byte[] Image(int seed) => FlashImageWriter.ToBytes(MiniResNet.Quantized(options, seed, out _, width));
        var a = Image(3);
        var b = Image(4);
        Assert.IsTrue(a.Length is > 15_000_000 and <= 16_000_000, $"image of {a.Length:N0} B");
        var chip = new SpiNorChip(SpiNorChip.W25Q256JVCapacity, SpiNorChip.W25Q256JVJedecId) { SectorEraseBusyPolls = 0, BlockEraseBusyPolls = 0 };
        SlotStore Store() => new(new SpiNorFlash(chip));
        Assert.IsGreaterThanOrEqualTo(16_000_000L, Store().MaxImageLength, "a 16 MB image fits one slot of a 32 MB chip");
        foreach (var image in new[] { a, b })
        {
            var store = Store();
            store.BeginWrite(image.Length, Crc32.Append(0, image));
            for (int o = 0; o < image.Length; o += 4096) store.WriteData(o, image.AsSpan(o, Math.Min(4096, image.Length - o)));
            store.Commit();
        }
        var slots = Store();
        Assert.IsTrue(slots.Inspect('A').Bootable && slots.Inspect('B').Bootable, string.Join("; ", slots.Describe()));
        var boot = slots.Boot();
        Assert.AreEqual('B', boot.Slot);
        var back = new byte[b.Length];
        boot.Region.Read(0, back);
        CollectionAssert.AreEqual(b, back);
    }
}
