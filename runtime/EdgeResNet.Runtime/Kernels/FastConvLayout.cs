namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>The SIMD conv's scratch needs, known on every target so plans are the same everywhere.</summary>
    public static partial class FastConv
    {
        /// <summary>Whether the SIMD conv can run here: AVX2 or arm64 NEON on .NET; never in the netstandard2.1 build, which runs the reference kernel.</summary>
        public static bool IsSupported
        {
            get
            {
#if NET
                return System.Runtime.Intrinsics.X86.Avx2.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.IsSupported;
#else
                return false;
#endif
            }
        }

        /// <summary>
        /// Whether the conv runs its AVX-512 instantiation (512-bit vectors of 16 channels' pairs, 64-bit multiply in the
        /// requantisation): every AVX-512 CPU with BW and DQ.
        /// </summary>
        public static bool Avx512Kernel
        {
            get
            {
#if NET
                return System.Runtime.Intrinsics.X86.Avx512BW.IsSupported && System.Runtime.Intrinsics.X86.Avx512DQ.IsSupported;
#else
                return false;
#endif
            }
        }

        /// <summary>
        /// The widest <see cref="WeightLayout"/> block the SIMD conv reads on this CPU: channel blocks of pair-interleaved weights,
        /// as many channels as one vector holds pairs of: 16 on AVX-512, 8 on AVX2 and NEON; 1 (rows) where there is no SIMD conv.
        /// </summary>
        public static int WeightChannelBlock => Avx512Kernel ? 16 : IsSupported ? 8 : 1;

        /// <summary>
        /// The narrowest block it reads: 8 (on AVX-512 too, through its 256-bit instantiation), so a plan whose weight buffer
        /// holds few channels of a wide layer need not pad its groups to 16; 1 where there is no SIMD conv.
        /// </summary>
        public static int NarrowChannelBlock => IsSupported ? 8 : 1;

        /// <summary>im2col values per output pixel: 0 where the input rows can be read directly (1x1, stride 1, channels a multiple of 16).</summary>
        public static int Im2ColShortsPerPixel(QLayer l) =>
            l.KernelH == 1 && l.KernelW == 1 && l.StrideH == 1 && l.StrideW == 1 && l.PadTop + l.PadLeft + l.PadBottom + l.PadRight == 0 && l.InC == l.WeightStride
                ? 0 : l.WeightStride;

        /// <summary>
        /// im2col values per output pixel on this CPU for this layer: also 0 where the AVX-512, AVX2 or NEON kernel
        /// reads the input in place (accumulator proven to fit 32 bits, unsplit weights, channels a multiple of 16).
        /// </summary>
        public static int Im2ColShortsPerPixel(QLayer l, bool splitWeights)
        {
#if NET
            // every SIMD kernel (AVX-512, AVX2 and NEON; every AVX-512 CPU has AVX2) reads the input through tap tables
            if ((System.Runtime.Intrinsics.X86.Avx2.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.IsSupported) && !splitWeights && l.AccumulatorBits <= 32 && l.InC % 16 == 0) return 0;
#endif
            return Im2ColShortsPerPixel(l);
        }
    }
}
