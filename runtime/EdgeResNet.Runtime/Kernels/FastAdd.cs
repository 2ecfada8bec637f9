#if NET
using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// <see cref="ReferenceKernels.AddOne"/> over a run of channels, a hardware vector of int16 at a
    /// time widened to int32 lanes (inputs are int16 and the shifts small, so int32 holds every
    /// intermediate exactly). <see cref="Vector{T}"/> takes the machine's width: 256-bit with AVX2,
    /// 128-bit NEON on arm64.
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
            fixed (short* pa = a, pb = b, py = y)
                for (int p = 0; p < pixels; p++)
                {
                    short* ra = pa + (long)p * aStride, rb = pb + (long)p * bStride, ry = py + (long)p * yStride;
                    int i = 0;
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

        /// <summary><see cref="FixedPoint.RoundShift"/> in int32 lanes.</summary>
        static Vector<int> Shift(Vector<int> x, int s) =>
            s > 0 ? Vector.ShiftRightArithmetic(x + new Vector<int>(1 << (s - 1)), s) : Vector.ShiftLeft(x, -s);
    }
}
#endif
