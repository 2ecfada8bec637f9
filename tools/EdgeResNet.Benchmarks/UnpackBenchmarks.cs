using BenchmarkDotNet.Attributes;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Benchmarks;

/// <summary>
/// One weight group's 10-bit rows unpacked into the SIMD kernel's blocks of 16 channels (AVX-512; run with
/// DOTNET_EnableAVX512=0 for the AVX2 path's blocks of 8), as the engine does before each group's kernel call, on
/// ResNet-50's group shapes. <see cref="Cold"/> walks a 64 MB buffer so every group comes from memory, as the weights do
/// in the engine (the image is larger than the cache); hot unpacks one group again and again. Weights per call are
/// printed with each shape, so G weights/s follows from the mean.
/// </summary>
[MemoryDiagnoser]
public class UnpackBenchmarks
{
    /// <summary>name: channels x reduce size (K).</summary>
    public static IEnumerable<string> Shapes() =>
    [
        "res3b_branch2b 64x1152",
        "res4b_branch2a 64x1024",
        "res5a_branch2b 32x4608",
    ];

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "";

    [Params(false, true)]
    public bool Cold { get; set; }

    int _channels, _reduce, _stride, _rowBytes, _block, _next;
    byte[] _packed = [];
    short[] _dest = [], _row = [];

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split(' ')[1].Split('x').Select(int.Parse).ToArray();
        _channels = dims[0];
        _reduce = dims[1];
        _stride = (_reduce + 15) & ~15;
        _rowBytes = BitPacking.PackedBytes(_reduce, 10);
        _block = ConvDispatch.ChannelBlock(ConvKernel.Simd);
        _packed = new byte[Cold ? 64 << 20 : _channels * _rowBytes];
        new Random(1).NextBytes(_packed);
        _dest = new short[WeightLayout.Shorts(_channels, _stride, _block)];
        _row = new short[_stride];
        Console.WriteLine($"// {Shape}: {(long)_channels * _reduce:N0} weights per call, blocks of {_block}");
    }

    [Benchmark]
    public void UnpackGroup()
    {
        int bytes = _channels * _rowBytes, at = _next;
        if (Cold) _next = at + bytes + bytes > _packed.Length ? 0 : at + bytes;
        WeightLayout.Unpack(new Span<byte>(_packed, at, bytes), 10, _rowBytes, _reduce, _stride, _channels, _block, _row, _dest);
    }
}
