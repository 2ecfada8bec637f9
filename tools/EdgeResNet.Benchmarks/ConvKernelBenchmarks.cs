using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Benchmarks;

/// <summary>
/// One band of output rows of a conv, all output channels, as the engine calls the kernel: the SIMD kernel
/// and the reference kernel on ResNet-50's shapes at 10 bits (random weights and inputs; the time does not
/// depend on the values). MACs per call are printed with each shape so G MAC/s follows from the mean.
/// </summary>
[MemoryDiagnoser]
public class ConvKernelBenchmarks
{
    /// <summary>name: H x W x Cin -> Cout, kernel, stride (output rows per call: 4, as a mid-size band).</summary>
    public static IEnumerable<string> Shapes() =>
    [
        "res2a_branch2b 56x56x64-64 k3",
        "res3a_branch2b 28x28x128-128 k3",
        "res4a_branch2c 14x14x256-1024 k1",
        "res4b_branch2a 14x14x1024-256 k1",
        "res5a_branch2b 7x7x512-512 k3",
    ];

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "";

    [Params(ConvKernel.Simd, ConvKernel.Reference)]
    public ConvKernel Kernel { get; set; }

    QLayer _layer = new();
    ConvTile _tile;
    short[] _input = [], _weights = [], _output = [], _im2col = [];
    int[] _multipliers = [], _offsets = [];
    long[] _acc = [];

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split(' ');
        var dims = parts[1].Split('x', '-').Select(int.Parse).ToArray();
        int h = dims[0], w = dims[1], cin = dims[2], cout = dims[3], k = int.Parse(parts[2][1..]), pad = k / 2;
        _layer = new QLayer
        {
            Name = parts[0], Op = QOp.Conv, Relu = true, InH = h, InW = w, InC = cin, OutH = h, OutW = w, OutC = cout,
            KernelH = k, KernelW = k, PadTop = pad, PadBottom = pad, PadLeft = pad, PadRight = pad,
            WeightBits = 10, InFrac = 10, OutFrac = 10, MultiplierBits = 16, MultiplierFrac = 13, OutShift = 23, AccumulatorBits = 32, OutBits = 16,
        };
        var rng = new Random(1);
        int rows = Math.Min(4, h);
        _tile = new ConvTile { CoCount = cout, OyCount = rows, OutChannelStride = cout };
        _input = Enumerable.Range(0, h * w * cin).Select(_ => (short)rng.Next(0, 1024)).ToArray();
        _weights = new short[cout * _layer.WeightStride];
        for (int c = 0; c < cout; c++)
            for (int i = 0; i < _layer.ReduceSize; i++) _weights[c * _layer.WeightStride + i] = (short)rng.Next(-64, 64);
        _weights = WeightLayout.FromRows(_weights, cout, _layer.WeightStride, ConvDispatch.ChannelBlock(Kernel));
        _multipliers = Enumerable.Repeat(1 << 12, cout).ToArray();
        _offsets = new int[cout];
        _output = new short[rows * w * cout];
        _im2col = new short[Math.Max(1, ConvDispatch.ScratchShortsPerRow(_layer, ConvKernel.Simd) * rows)];
        _acc = new long[rows * w * cout];
        Console.WriteLine($"// {Shape}: {(long)rows * w * cout * _layer.ReduceSize:N0} MACs per call");
    }

    [Benchmark]
    public void ConvBand() => ConvDispatch.Run(Kernel, ConvDispatch.ChannelBlock(Kernel), _layer, _tile, _input, _weights, _multipliers, _offsets, _output, default, default, default, _im2col, _acc);

    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(ConvKernelBenchmarks).Assembly).Run(args);
}
