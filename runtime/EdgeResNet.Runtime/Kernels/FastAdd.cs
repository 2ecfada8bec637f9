#if NET
using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// <see cref="ReferenceKernels.AddOne"/> over a run of channels, a hardware vector of int16 at a
    /// time widened to int32 lanes (inputs are int16 and the shifts small, so int32 holds every
    /// intermediate exactly). <see cref="Vector{T}"/> takes the machine's width: 256-bit with AVX2,
    /// 128-bit NEON on arm64. With AVX-512 and no left shift, 32 channels at a time stay int16: a rounding right shift
    /// cannot overflow written as (x &gt;&gt; s) + ((x &gt;&gt; (s - 1)) &amp; 1), and a saturating add clamped to the output's
    /// range is the exact sum clamped, since int16's own limits lie at or past that range.
    /// </summary>
    public static unsafe class FastAdd
    {
        /// <summary>
        /// <paramref name="pixels"/> runs of <paramref name="n"/> channels, run p at p x the stride of each of <paramref name="a"/>,
        /// <paramref name="b"/> and <paramref name="y"/>: one call for a whole band of a channel group (a call per pixel cost more than its adds).
        /// </summary>
        public static void AddPixels(QLayer l, Span<short> a, int aStride, Span<short> b, int bStride, Span<short> y, int yStride, int pixels, int n)
        {
            if (pixels <= 0 || n <= 0) return;
            long last = (long)(pixels - 1);
            if (last * aStride + n > a.Length || last * bStride + n > b.Length || last * yStride + n > y.Length)
                throw new ArgumentException($"{pixels} runs of {n} channels do not fit the add's buffers");
            int sa = l.InFrac - l.OutFrac, sb = l.In1Frac - l.OutFrac, count = Vector<short>.Count;
            bool vector = Vector.IsHardwareAccelerated && Math.Abs(sa) < 16 && Math.Abs(sb) < 16;
            var lo = new Vector<int>(l.Relu ? 0 : -(1 << (l.OutBits - 1)));
            var hi = new Vector<int>((1 << (l.OutBits - 1)) - 1);
            bool narrow = Avx512BW.IsSupported && sa >= 0 && sa < 16 && sb >= 0 && sb < 16;
            var lo16 = Vector512.Create((short)(l.Relu ? 0 : -(1 << (l.OutBits - 1))));
            var hi16 = Vector512.Create((short)((1 << (l.OutBits - 1)) - 1));
            fixed (short* pa = a, pb = b, py = y)
                for (int p = 0; p < pixels; p++)
                {
                    short* ra = pa + (long)p * aStride, rb = pb + (long)p * bStride, ry = py + (long)p * yStride;
                    int i = 0;
                    if (narrow)
                        for (; i + 32 <= n; i += 32)
                        {
                            var sum = Avx512BW.AddSaturate(Shift16(Vector512.Load(ra + i), sa), Shift16(Vector512.Load(rb + i), sb));
                            Vector512.Min(Vector512.Max(sum, lo16), hi16).Store(ry + i);
                        }
                    if (vector)
                        for (; i + count <= n; i += count)
                        {
                            Vector.Widen(Unsafe.ReadUnaligned<Vector<short>>(ra + i), out var a0, out var a1);
                            Vector.Widen(Unsafe.ReadUnaligned<Vector<short>>(rb + i), out var b0, out var b1);
                            var y0 = Vector.Min(Vector.Max(Shift(a0, sa) + Shift(b0, sb), lo), hi);
                            var y1 = Vector.Min(Vector.Max(Shift(a1, sa) + Shift(b1, sb), lo), hi);
                            Unsafe.WriteUnaligned(ry + i, Vector.Narrow(y0, y1));
                        }
                    for (; i < n; i++) ry[i] = ReferenceKernels.AddOne(l, ra[i], rb[i]);
                }
        }

        /// <summary><see cref="FixedPoint.RoundShift"/> right by 0 to 15 in int16 lanes, with no intermediate past int16.</summary>
        static Vector512<short> Shift16(Vector512<short> x, int s) =>
            s == 0 ? x : Vector512.ShiftRightArithmetic(x, s) + (Vector512.ShiftRightArithmetic(x, s - 1) & Vector512<short>.One);

        /// <summary><see cref="FixedPoint.RoundShift"/> in int32 lanes.</summary>
        static Vector<int> Shift(Vector<int> x, int s) =>
            s > 0 ? Vector.ShiftRightArithmetic(x + new Vector<int>(1 << (s - 1)), s) : Vector.ShiftLeft(x, -s);
    }
}
#endif
