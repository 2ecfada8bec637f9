#if NET
using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// Conv with int16 x int16 -> int32 multiply-add (AVX2 vpmaddwd, 16 MACs per instruction),
    /// bit-exact with <see cref="ReferenceKernels.Conv"/>: lanes accumulate in int32 over chunks of K
    /// short enough that no lane can overflow (|w| &lt;= 2^9, |x| &lt;= 2^15, 64 products per lane per
    /// chunk), then flush into 64-bit sums; a layer whose proven bound fits 32 bits takes all of K
    /// in one chunk. Weights wider than 10 bits are split by the caller into w = hi * 2^8 + lo.
    /// </summary>
    public static unsafe partial class FastConv
    {
        public static bool IsSupported => Avx2.IsSupported;

        const int SafeChunk = 512;

        /// <summary>Scratch the caller provides: im2col rows (shorts) and accumulators (longs) for <paramref name="pixels"/> output pixels.</summary>
        public static int Im2ColShorts(QLayer l, int pixels) => pixels * Im2ColShortsPerPixel(l);

        /// <param name="weightsHi">[tile.CoCount][WeightStride]: the weights, or their high part w &gt;&gt; 8 when <paramref name="weightsLo"/> is given.</param>
        /// <param name="weightsLo">Empty, or the low part w &amp; 255 of weights wider than 10 bits.</param>
        /// <param name="im2col">At least <see cref="Im2ColShorts"/> for the tile's output pixels.</param>
        /// <param name="acc">At least output pixels x tile.CoCount.</param>
        public static void Conv(QLayer l, ConvTile t, Span<short> input, Span<short> weightsHi, Span<short> weightsLo, Span<int> multipliers, Span<int> offsets,
            Span<short> output, Span<int> wideOutput, Span<short> im2col, Span<long> acc)
        {
            int kp = l.WeightStride, pixels = t.OyCount * l.OutW, coCount = t.CoCount;
            bool split = weightsLo.Length > 0;
            int chunk = !split && l.AccumulatorBits <= 32 ? kp : SafeChunk;
            Span<short> rows = Im2ColShortsPerPixel(l) > 0 ? Im2Col(l, t, input, im2col) : input.Slice((t.OyStart - t.InRowBase) * l.InW * kp, pixels * kp);
            acc = acc.Slice(0, pixels * coCount);
            acc.Clear();
            fixed (short* a = rows, wh = weightsHi, wl = weightsLo)
            fixed (long* s = acc)
            {
                DotTile(a, pixels, wh, coCount, kp, chunk, s, split ? 8 : 0);
                if (split) DotTile(a, pixels, wl, coCount, kp, chunk, s, 0);
            }
            for (int p = 0; p < pixels; p++)
            {
                int oy = t.OyStart + p / l.OutW, ox = p % l.OutW;
                for (int c = 0; c < coCount; c++)
                {
                    int co = t.CoStart + c;
                    ReferenceKernels.Store(l, acc[p * coCount + c], multipliers[co], offsets[co], t.OutIndex(l, oy, ox, co), output, wideOutput);
                }
            }
        }

        static Span<short> Im2Col(QLayer l, ConvTile t, Span<short> input, Span<short> rows)
        {
            int kp = l.WeightStride;
            rows = rows.Slice(0, t.OyCount * l.OutW * kp);
            rows.Clear();
            for (int oy = t.OyStart; oy < t.OyStart + t.OyCount; oy++)
                for (int ox = 0; ox < l.OutW; ox++)
                {
                    int row = ((oy - t.OyStart) * l.OutW + ox) * kp;
                    for (int ky = 0; ky < l.KernelH; ky++)
                    {
                        int iy = oy * l.StrideH + ky - l.PadTop;
                        if (iy < 0 || iy >= l.InH) continue;
                        for (int kx = 0; kx < l.KernelW; kx++)
                        {
                            int ix = ox * l.StrideW + kx - l.PadLeft;
                            if (ix < 0 || ix >= l.InW) continue;
                            input.Slice(((iy - t.InRowBase) * l.InW + ix) * l.InC, l.InC).CopyTo(rows.Slice(row + (ky * l.KernelW + kx) * l.InC));
                        }
                    }
                }
            return rows;
        }

        /// <summary>acc[p][c] += dot(a[p], w[c]) * 2^shift for all pixel rows p and channel rows c (both of length kp).</summary>
        static void DotTile(short* a, int rows, short* w, int cols, int kp, int chunk, long* acc, int shift)
        {
            int p = 0;
            for (; p + 2 <= rows; p += 2)
            {
                int c = 0;
                for (; c + 4 <= cols; c += 4) Dot2x4(a + p * kp, w + c * kp, kp, chunk, acc + p * cols + c, cols, shift);
                for (; c < cols; c++)
                {
                    acc[p * cols + c] += Dot1x1(a + p * kp, w + c * kp, kp, chunk) << shift;
                    acc[(p + 1) * cols + c] += Dot1x1(a + (p + 1) * kp, w + c * kp, kp, chunk) << shift;
                }
            }
            for (; p < rows; p++)
                for (int c = 0; c < cols; c++)
                    acc[p * cols + c] += Dot1x1(a + p * kp, w + c * kp, kp, chunk) << shift;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static long Sum(Vector256<int> v)
        {
            var (lo, hi) = Vector256.Widen(v);
            return Vector256.Sum(lo + hi);
        }

        static void Dot2x4(short* a0, short* w0, int kp, int chunk, long* acc, int ldAcc, int shift)
        {
            short* a1 = a0 + kp, w1 = w0 + kp, w2 = w1 + kp, w3 = w2 + kp;
            long s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            for (int k0 = 0; k0 < kp; k0 += chunk)
            {
                int end = Math.Min(kp, k0 + chunk);
                Vector256<int> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
                for (int k = k0; k < end; k += 16)
                {
                    var x0 = Avx.LoadVector256(a0 + k); var x1 = Avx.LoadVector256(a1 + k);
                    var v = Avx.LoadVector256(w0 + k);
                    c00 = Avx2.Add(c00, Avx2.MultiplyAddAdjacent(x0, v)); c10 = Avx2.Add(c10, Avx2.MultiplyAddAdjacent(x1, v));
                    v = Avx.LoadVector256(w1 + k);
                    c01 = Avx2.Add(c01, Avx2.MultiplyAddAdjacent(x0, v)); c11 = Avx2.Add(c11, Avx2.MultiplyAddAdjacent(x1, v));
                    v = Avx.LoadVector256(w2 + k);
                    c02 = Avx2.Add(c02, Avx2.MultiplyAddAdjacent(x0, v)); c12 = Avx2.Add(c12, Avx2.MultiplyAddAdjacent(x1, v));
                    v = Avx.LoadVector256(w3 + k);
                    c03 = Avx2.Add(c03, Avx2.MultiplyAddAdjacent(x0, v)); c13 = Avx2.Add(c13, Avx2.MultiplyAddAdjacent(x1, v));
                }
                s00 += Sum(c00); s01 += Sum(c01); s02 += Sum(c02); s03 += Sum(c03);
                s10 += Sum(c10); s11 += Sum(c11); s12 += Sum(c12); s13 += Sum(c13);
            }
            acc[0] += s00 << shift; acc[1] += s01 << shift; acc[2] += s02 << shift; acc[3] += s03 << shift;
            acc[ldAcc] += s10 << shift; acc[ldAcc + 1] += s11 << shift; acc[ldAcc + 2] += s12 << shift; acc[ldAcc + 3] += s13 << shift;
        }

        static long Dot1x1(short* a, short* w, int kp, int chunk)
        {
            long s = 0;
            for (int k0 = 0; k0 < kp; k0 += chunk)
            {
                int end = Math.Min(kp, k0 + chunk);
                Vector256<int> c = default;
                for (int k = k0; k < end; k += 16)
                    c = Avx2.Add(c, Avx2.MultiplyAddAdjacent(Avx.LoadVector256(a + k), Avx.LoadVector256(w + k)));
                s += Sum(c);
            }
            return s;
        }
    }
}
#endif
