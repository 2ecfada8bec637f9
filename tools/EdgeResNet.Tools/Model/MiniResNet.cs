using EdgeResNet.Runtime;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Model;

/// <summary>
/// A small network with ResNet-50's structure (stem, projection and identity bottlenecks, a
/// strided stage, global pooling, dense) and seeded random weights: exercises every path of the
/// quantiser and the runtime in milliseconds, where the real model takes seconds.
/// </summary>
public static class MiniResNet
{
    /// <param name="width">Multiplies every channel count (a wide network makes a large image: the A/B test of a 32 MB chip).</param>
    /// <param name="stages">Bottleneck stages, 2 or 3: a third (res4, strided) gives a streamed segment two places to end, so it can run in two phases.</param>
    public static Network Build(int seed = 1, int size = 32, int classes = 10, int width = 1, int stages = 2)
    {
        var rng = new Random(seed);
        var layers = new List<Layer>();
        Shape3 Shape(string name) => layers.First(l => l.Name == name).OutShape;
        float[] Random(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

        string Add(Layer l) { layers.Add(l); return l.Name; }
        string Pad(string input, int p) => Add(new Layer
        {
            Name = input + "_pad", Kind = LayerKind.ZeroPad, Inputs = [input], PadTop = p, PadBottom = p, PadLeft = p, PadRight = p,
            OutShape = Shape(input) with { H = Shape(input).H + 2 * p, W = Shape(input).W + 2 * p },
        });
        string Conv(string name, string input, int k, int stride, int filters, int pad = 0)
        {
            var s = Shape(input);
            return Add(new Layer
            {
                Name = name, Kind = LayerKind.Conv2D, Inputs = [input], KernelH = k, KernelW = k, StrideH = stride, StrideW = stride,
                PadTop = pad, PadBottom = pad, PadLeft = pad, PadRight = pad,
                OutShape = new((s.H + 2 * pad - k) / stride + 1, (s.W + 2 * pad - k) / stride + 1, filters),
                Kernel = Random(k * k * s.C * filters, Math.Sqrt(2.0 / (k * k * s.C))), Bias = Random(filters, 0.05),
            });
        }
        string Bn(string name, string input)
        {
            int c = Shape(input).C;
            return Add(new Layer
            {
                Name = name, Kind = LayerKind.BatchNorm, Inputs = [input], OutShape = Shape(input), Epsilon = 1e-3f,
                Gamma = Random(c, 0.5).Select(v => v + 1f).ToArray(), Beta = Random(c, 0.2), Mean = Random(c, 0.2),
                Variance = Random(c, 0.3).Select(v => v + 0.5f).ToArray(),
            });
        }
        string Relu(string input) => Add(new Layer { Name = input + "_relu", Kind = LayerKind.Relu, Inputs = [input], OutShape = Shape(input) });
        string Block(string name, string x, int mid, int outC, int stride, bool project)
        {
            string a = Relu(Bn(name + "_bn2a", Conv(name + "_branch2a", x, 1, stride, mid)));
            string b = Relu(Bn(name + "_bn2b", Conv(name + "_branch2b", a, 3, 1, mid, pad: 1)));
            string c = Bn(name + "_bn2c", Conv(name + "_branch2c", b, 1, 1, outC));
            string s = project ? Bn(name + "_bn1", Conv(name + "_branch1", x, 1, stride, outC)) : x;
            return Relu(Add(new Layer { Name = name + "_add", Kind = LayerKind.Add, Inputs = [c, s], OutShape = Shape(c) }));
        }

        layers.Add(new Layer { Name = "input", Kind = LayerKind.Input, Inputs = [], OutShape = new(size, size, 3) });
        string stem = Relu(Bn("bn_conv1", Conv("conv1", Pad("input", 3), 7, 2, 16 * width)));
        string pool = Add(new Layer
        {
            Name = "pool1", Kind = LayerKind.MaxPool, Inputs = [Pad(stem, 1)], KernelH = 3, KernelW = 3, StrideH = 2, StrideW = 2,
            OutShape = new((Shape(stem).H + 2 - 3) / 2 + 1, (Shape(stem).W + 2 - 3) / 2 + 1, 16 * width),
        });
        string x = Block("res2a", pool, 8 * width, 32 * width, 1, project: true);
        x = Block("res2b", x, 8 * width, 32 * width, 1, project: false);
        x = Block("res3a", x, 16 * width, 64 * width, 2, project: true);
        x = Block("res3b", x, 16 * width, 64 * width, 1, project: false);
        if (stages == 3)
        {
            x = Block("res4a", x, 32 * width, 128 * width, 2, project: true);
            x = Block("res4b", x, 32 * width, 128 * width, 1, project: false);
        }
        else if (stages != 2) throw new ArgumentOutOfRangeException(nameof(stages), "the mini network has 2 or 3 stages");
        int top = Shape(x).C;
        string gap = Add(new Layer { Name = "avg_pool", Kind = LayerKind.GlobalAvgPool, Inputs = [x], OutShape = new(1, 1, top) });
        Add(new Layer
        {
            Name = "fc", Kind = LayerKind.Dense, Inputs = [gap], OutShape = new(1, 1, classes), Softmax = true,
            Kernel = Random(top * classes, 0.3), Bias = Random(classes, 0.1),
        });
        return new Network(layers);
    }

    /// <summary>
    /// Mixed precision on the mini network: every conv its own width, 2 to 16 bits (16, 11 and 12 take the split
    /// 64-bit path, 2 is ternary), per-channel steps and bias correction. The mini image of the Mono and arm64 checks uses it.
    /// </summary>
    public static QuantOptions MixedOptions(BnScheme scheme = BnScheme.Separate)
    {
        int[] cycle = [8, 2, 16, 4, 11, 6, 10, 3, 12, 7, 9, 5, 13, 14, 15];
        var convs = Build().Layers.Where(l => l.Kind is LayerKind.Conv2D or LayerKind.Dense).Select(l => l.Name).ToList();
        return new QuantOptions(10, 16, scheme, Scales: WeightScales.PerChannel, BiasCorrection: true,
            LayerBits: new LayerWidths(convs.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => cycle[p.i % cycle.Length])));
    }

    /// <summary>The mini network quantised, calibrated on 8 seeded random inputs (returned too, as float tensors).</summary>
    public static QModel Quantized(QuantOptions opt, int seed, out float[][] inputs, int width = 1, int size = 32, int stages = 2)
    {
        var (net, cal, x) = Calibrated(seed, width: width, size: size, stages: stages);
        inputs = x;
        return Quantizer.Quantize(net, cal, opt);
    }

    /// <summary>The mini network and its calibration on 8 seeded random inputs, uniform in mean ± 100 (a photo's channels are not zero-mean; bias correction acts through the mean).</summary>
    public static (Network Net, Calibration Cal, float[][] Inputs) Calibrated(int seed, double mean = 0, int width = 1, int size = 32, int stages = 2)
    {
        var net = Build(seed, size, width: width, stages: stages);
        var rng = new Random(seed);
        var x = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, net.Input.OutShape.Size).Select(_ => (float)(rng.NextDouble() * 200 - 100 + mean)).ToArray()).ToArray();
        return (net, Calibration.Run(new FloatReference(net), x.Length, i => x[i], threads: 1), x);
    }
}
