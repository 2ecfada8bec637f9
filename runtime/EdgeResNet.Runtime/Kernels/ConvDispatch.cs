using System;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>Which conv kernel computes a layer.</summary>
    public enum ConvKernel { Reference, Simd, SimdSplit }

    /// <summary>
    /// Kernel choice in one place, CMSIS-NN style: <see cref="Select"/> picks the kernel for a layer,
    /// <see cref="ScratchShortsPerRow"/> says the im2col scratch that kernel needs (from the same
    /// choice), and <see cref="Run"/> calls it. The weight split for the int16 multiply-add is
    /// defined here too: weights wider than <see cref="MaxUnsplitWeightBits"/> run as
    /// w = hi * 2^<see cref="SplitShift"/> + lo.
    /// </summary>
    public static class ConvDispatch
    {
        /// <summary>The widest weights the SIMD kernels take whole: |w| &lt;= 2^9 keeps 64 int16 x int16 products per int32 lane exact.</summary>
        public const int MaxUnsplitWeightBits = 10;
        /// <summary>Bits of the low part of a split weight (0..255); the high part is w &gt;&gt; SplitShift.</summary>
        public const int SplitShift = 8;

        public static bool NeedsSplit(QLayer l) => l.WeightBits > MaxUnsplitWeightBits;

        /// <param name="simdAllowed">False to run the reference kernel even where the SIMD one can run.</param>
        public static ConvKernel Select(QLayer l, bool simdAllowed) =>
            !simdAllowed || !FastConv.IsSupported ? ConvKernel.Reference : NeedsSplit(l) ? ConvKernel.SimdSplit : ConvKernel.Simd;

        /// <summary>im2col scratch (int16 values) per output row of the kernel <see cref="Select"/> chose: none for the reference kernel.</summary>
        public static int ScratchShortsPerRow(QLayer l, ConvKernel kernel) =>
            kernel == ConvKernel.Reference ? 0 : l.OutW * FastConv.Im2ColShortsPerPixel(l, kernel == ConvKernel.SimdSplit);

        /// <summary>Whether the kernel needs the accumulator buffer (tile pixels x channels of 64-bit sums) for a tile of <paramref name="coCount"/> channels: the reference kernel and the kernel that requantises from its registers do not.</summary>
        public static bool UsesAccumulators(QLayer l, ConvKernel kernel, int coCount)
        {
#if NET
            return kernel != ConvKernel.Reference && !FastConv.RequantisesFromRegisters(l, coCount, kernel == ConvKernel.SimdSplit);
#else
            return false;
#endif
        }

        /// <summary>The widest <see cref="WeightLayout"/> block the kernel reads its weights in (1: rows); the plan picks it or <see cref="NarrowChannelBlock"/> per layer.</summary>
        public static int ChannelBlock(ConvKernel kernel) => kernel == ConvKernel.Reference ? 1 : FastConv.WeightChannelBlock;

        /// <summary>The narrowest block the kernel reads (1: rows).</summary>
        public static int NarrowChannelBlock(ConvKernel kernel) => kernel == ConvKernel.Reference ? 1 : FastConv.NarrowChannelBlock;

        /// <summary>w = hi * 2^SplitShift + lo, value by value (so in any layout), for the SIMD kernel's two passes.</summary>
        public static void Split(Span<short> weights, Span<short> hi, Span<short> lo)
        {
            for (int i = 0; i < weights.Length; i++)
            {
                hi[i] = (short)(weights[i] >> SplitShift);
                lo[i] = (short)(weights[i] & ((1 << SplitShift) - 1));
            }
        }

        /// <summary>What the SIMD kernel is on this CPU, or the reference kernel.</summary>
        public static string Describe(bool simd)
        {
#if NET
            if (simd && FastConv.IsSupported)
                return FastConv.Avx512Kernel ? "AVX-512 vpmaddwd, 6 pixels x 32 channels in registers"
                    : System.Runtime.Intrinsics.X86.AvxVnni.IsSupported ? "AVX-VNNI vpdpwssd, 6 pixels x 16 channels in registers"
                    : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "AVX2 vpmaddwd, 6 pixels x 16 channels in registers" : "arm64 NEON smlal/smlal2, 6 pixels x 8 channels in registers";
#endif
            return "reference (scalar, 64-bit accumulation)";
        }

        /// <summary>
        /// Runs <paramref name="kernel"/> on one tile, its <paramref name="weights"/> in layout <paramref name="block"/> (one the kernel reads:
        /// <see cref="ChannelBlock"/> or <see cref="NarrowChannelBlock"/>). <paramref name="hi"/> and <paramref name="lo"/> hold at
        /// least the tile's weights for <see cref="ConvKernel.SimdSplit"/> (filled here); <paramref name="im2col"/>
        /// holds <see cref="ScratchShortsPerRow"/> x tile rows; <paramref name="acc"/> tile pixels x channels (SIMD only).
        /// </summary>
        public static void Run(ConvKernel kernel, int block, QLayer l, ConvTile tile, Span<short> input, Span<short> weights, Span<int> multipliers, Span<int> offsets,
            Span<short> output, Span<int> wideOutput, Span<short> hi, Span<short> lo, Span<short> im2col, Span<long> acc)
        {
#if NET
            if (kernel == ConvKernel.SimdSplit)
            {
                hi = hi.Slice(0, weights.Length);
                lo = lo.Slice(0, weights.Length);
                Split(weights, hi, lo);
                FastConv.Conv(l, tile, block, input, hi, lo, multipliers, offsets, output, wideOutput, im2col, acc);
                return;
            }
            if (kernel == ConvKernel.Simd)
            {
                FastConv.Conv(l, tile, block, input, weights, Span<short>.Empty, multipliers, offsets, output, wideOutput, im2col, acc);
                return;
            }
#endif
            ReferenceKernels.Conv(l, tile, input, weights, multipliers, offsets, output, wideOutput);
        }
    }
}
