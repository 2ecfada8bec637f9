#if NET
using System;
using System.Runtime.Intrinsics;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// <see cref="ReferenceKernels.AddOne"/> over a run of channels, 16 at a time in int32 lanes
    /// (inputs are int16 and the shifts small, so int32 holds every intermediate exactly).
    /// </summary>
    public static class FastAdd
    {
        public static void AddRow(QLayer l, Span<short> a, Span<short> b, Span<short> y)
        {
            int sa = l.InFrac - l.OutFrac, sb = l.In1Frac - l.OutFrac, i = 0;
            if (Vector256.IsHardwareAccelerated && Math.Abs(sa) < 16 && Math.Abs(sb) < 16)
            {
                var lo = Vector256.Create(l.Relu ? 0 : -(1 << (l.OutBits - 1)));
                var hi = Vector256.Create((1 << (l.OutBits - 1)) - 1);
                for (; i + 16 <= y.Length; i += 16)
                {
                    var (a0, a1) = Vector256.Widen(Vector256.Create<short>(a.Slice(i, 16)));
                    var (b0, b1) = Vector256.Widen(Vector256.Create<short>(b.Slice(i, 16)));
                    var y0 = Vector256.Min(Vector256.Max(Shift(a0, sa) + Shift(b0, sb), lo), hi);
                    var y1 = Vector256.Min(Vector256.Max(Shift(a1, sa) + Shift(b1, sb), lo), hi);
                    Vector256.Narrow(y0, y1).CopyTo(y.Slice(i, 16));
                }
            }
            for (; i < y.Length; i++) y[i] = ReferenceKernels.AddOne(l, a[i], b[i]);
        }

        /// <summary><see cref="FixedPoint.RoundShift"/> in int32 lanes.</summary>
        static Vector256<int> Shift(Vector256<int> x, int s) =>
            s > 0 ? Vector256.ShiftRightArithmetic(x + Vector256.Create(1 << (s - 1)), s) : Vector256.ShiftLeft(x, -s);
    }
}
#endif
