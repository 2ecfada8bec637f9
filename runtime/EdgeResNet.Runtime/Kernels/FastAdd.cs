#if NET
using System;
using System.Numerics;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// <see cref="ReferenceKernels.AddOne"/> over a run of channels, a hardware vector of int16 at a
    /// time widened to int32 lanes (inputs are int16 and the shifts small, so int32 holds every
    /// intermediate exactly). <see cref="Vector{T}"/> takes the machine's width: 256-bit with AVX2,
    /// 128-bit NEON on arm64.
    /// </summary>
    public static class FastAdd
    {
        public static void AddRow(QLayer l, Span<short> a, Span<short> b, Span<short> y)
        {
            int sa = l.InFrac - l.OutFrac, sb = l.In1Frac - l.OutFrac, i = 0, n = Vector<short>.Count;
            if (Vector.IsHardwareAccelerated && Math.Abs(sa) < 16 && Math.Abs(sb) < 16)
            {
                var lo = new Vector<int>(l.Relu ? 0 : -(1 << (l.OutBits - 1)));
                var hi = new Vector<int>((1 << (l.OutBits - 1)) - 1);
                for (; i + n <= y.Length; i += n)
                {
                    Vector.Widen(new Vector<short>(a.Slice(i, n)), out var a0, out var a1);
                    Vector.Widen(new Vector<short>(b.Slice(i, n)), out var b0, out var b1);
                    var y0 = Vector.Min(Vector.Max(Shift(a0, sa) + Shift(b0, sb), lo), hi);
                    var y1 = Vector.Min(Vector.Max(Shift(a1, sa) + Shift(b1, sb), lo), hi);
                    Vector.Narrow(y0, y1).CopyTo(y.Slice(i, n));
                }
            }
            for (; i < y.Length; i++) y[i] = ReferenceKernels.AddOne(l, a[i], b[i]);
        }

        /// <summary><see cref="FixedPoint.RoundShift"/> in int32 lanes.</summary>
        static Vector<int> Shift(Vector<int> x, int s) =>
            s > 0 ? Vector.ShiftRightArithmetic(x + new Vector<int>(1 << (s - 1)), s) : Vector.ShiftLeft(x, -s);
    }
}
#endif
