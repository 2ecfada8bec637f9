using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Kernels;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.KernelCheck;

/// <summary>
/// Random conv layers of odd shapes (channels not a multiple of the kernel's blocks, pixels not of its rows, strided,
/// padded, 1x1 read in place, weights wider than 10 bits that accumulate in 64 bits, a wide-output layer, more channels
/// than one tile's blocks), each run
/// through the SIMD kernel this CPU selects and through the reference kernel.
/// </summary>
public static class KernelCases
{
    public static readonly (int K, int Stride, int Cin, int Cout, int Bits, bool Signed)[] Shapes =
    {
        (3, 1, 16, 8, 10, false), (7, 2, 3, 5, 10, true), (1, 2, 32, 7, 8, false), (1, 1, 48, 9, 16, true), (3, 2, 5, 3, 13, false),
        (1, 1, 2048, 6, 10, true), (3, 1, 16, 24, 10, false), (1, 1, 32, 40, 8, true), (3, 1, 64, 20, 14, true), (3, 2, 32, 33, 10, false),
        (3, 1, 32, 20, 6, false), (3, 2, 16, 12, 7, true), (1, 1, 64, 4, 10, false), (1, 1, 16, 13, 10, true), (3, 1, 48, 3, 9, false),
        // wider than one tile of blocks (AVX-512 takes four of 16 channels) and a partial tile after it, also split at 64 bits
        (3, 1, 32, 70, 10, false), (1, 1, 64, 100, 12, false),
    };

    /// <summary>One case's outputs: the reference kernel's and the SIMD kernel's, int16 and wide.</summary>
    public sealed record Result(QLayer Layer, ConvKernel Kernel, int Block, short[] Expected, short[] Actual, int[] ExpectedWide, int[] ActualWide)
    {
        public string Name => $"k{Layer.KernelH} s{Layer.StrideH} cin{Layer.InC} cout{Layer.OutC} bits{Layer.WeightBits} block{Block}";
        public bool Equal => Expected.AsSpan().SequenceEqual(Actual) && ExpectedWide.AsSpan().SequenceEqual(ActualWide);
        public bool ProducesSomething => Expected.Any(v => v != 0) || ExpectedWide.Any(v => v != 0);
    }

    public static IEnumerable<Result> Run(int seed = 9)
    {
        var rng = new Random(seed);
        foreach (var (k, stride, cin, cout, bits, signed) in Shapes)
        {
            var l = new QLayer
            {
                Op = QOp.Conv, InH = 9, InW = 7, InC = cin, KernelH = k, KernelW = k, StrideH = stride, StrideW = stride,
                PadTop = k / 2, PadLeft = k / 2, PadBottom = k / 2, PadRight = k / 2, OutC = cout, WeightBits = bits,
                MultiplierBits = 16, OffsetShift = 3, OutShift = 20, Relu = !signed, OutBits = 16,
            };
            if (cin == 2048) { l.InH = l.InW = 1; l.WideOutput = true; l.OutBits = 32; } // the classifier: one pixel, int32 logits
            l.OutH = (l.InH + l.PadTop + l.PadBottom - l.KernelH) / l.StrideH + 1;
            l.OutW = (l.InW + l.PadLeft + l.PadRight - l.KernelW) / l.StrideW + 1;
            int wMax = (1 << (bits - 1)) - 1;
            l.Weights = new short[cout * l.WeightStride];
            for (int c = 0; c < cout; c++)
                for (int i = 0; i < l.ReduceSize; i++) l.Weights[c * l.WeightStride + i] = (short)rng.Next(-wMax, wMax + 1);
            l.Multipliers = Enumerable.Range(0, cout).Select(_ => rng.Next(-30000, 30000)).ToArray();
            l.Offsets = Enumerable.Range(0, cout).Select(_ => rng.Next(int.MinValue / 2, int.MaxValue / 2)).ToArray();
            l.AccumulatorBits = Quantizer.AccumulatorBits(l, !signed, 16);
            var x = Enumerable.Range(0, l.InSize).Select(_ => (short)(signed ? rng.Next(-32768, 32768) : rng.Next(0, 32768))).ToArray();
            var expected = new short[l.OutSize]; var expectedWide = new int[l.OutSize];
            ReferenceKernels.Conv(l, ConvTile.Whole(l), x, l.Weights, l.Multipliers, l.Offsets, expected, expectedWide);
            var kernel = ConvDispatch.Select(l, simdAllowed: true);
            // every block the kernel reads here: AVX-512 takes 16 channels a vector, or 8 where a plan gives a layer those
            foreach (int block in new[] { ConvDispatch.ChannelBlock(kernel), ConvDispatch.NarrowChannelBlock(kernel) }.Distinct())
            {
                var actual = new short[l.OutSize]; var actualWide = new int[l.OutSize];
                var laidOut = WeightLayout.FromRows(l.Weights, cout, l.WeightStride, block);
                ConvDispatch.Run(kernel, block, l, ConvTile.Whole(l), x, laidOut, l.Multipliers, l.Offsets, actual, actualWide, new short[laidOut.Length], new short[laidOut.Length],
                    new short[ConvDispatch.ScratchShortsPerRow(l, kernel) * l.OutH], new long[l.OutH * l.OutW * cout]);
                yield return new Result(l, kernel, block, expected, actual, expectedWide, actualWide);
            }
        }
    }
}
