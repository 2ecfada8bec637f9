#if NET
using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// Conv with int16 x int16 -> int32 multiply-add (AVX-512 and AVX2 vpmaddwd, 32 and 16 MACs per
    /// instruction, the AVX2 kernel register-blocked over pair-interleaved weights (<see cref="BlockedTile"/>);
    /// on arm64 NEON smlal/smlal2, 4 MACs each, into separate low and high accumulators),
    /// bit-exact with <see cref="ReferenceKernels.Conv"/>: lanes accumulate in int32 over chunks of K
    /// short enough that no lane can overflow (|w| &lt;= 2^9, |x| &lt;= 2^15, 64 products per lane per
    /// chunk), then flush into 64-bit sums; a layer whose proven bound fits 32 bits takes all of K
    /// in one chunk. Weights wider than 10 bits are split by the caller (<see cref="ConvDispatch.Split"/>).
    /// </summary>
    public static unsafe partial class FastConv
    {
        const int SafeChunk = 512;

        /// <summary>AVX-512 requantises 16 channels at a time with its 64-bit multiply and arithmetic shift.</summary>
        static bool Avx512Store(QLayer l, int coCount) =>
            Avx512DQ.IsSupported && Avx512BW.IsSupported && !l.WideOutput && l.OutShift > 0 && coCount >= 16;

        /// <summary>AVX2 has no 64-bit multiply or arithmetic shift: its path multiplies 32 x 32 -> 64 bits, exact where the proven bound fits 32 bits.</summary>
        static bool Avx2Store(QLayer l, int coCount) =>
            !Avx512Store(l, coCount) && Avx2.IsSupported && !l.WideOutput && l.OutShift > 0 && l.AccumulatorBits <= 32 && coCount >= 8;

        /// <summary>
        /// AVX2 with a 32-bit bound (unsplit weights, at least one block of 8 channels) requantises straight from the
        /// accumulator registers: no 64-bit sums in between, so the tile needs no accumulator buffer.
        /// </summary>
        public static bool RequantisesFromRegisters(QLayer l, int coCount, bool split) => !split && Avx2Store(l, coCount);

        /// <param name="weightsHi">The tile's weights in the layout of <see cref="WeightChannelBlock"/> (<see cref="WeightLayout"/>: rows, or
        /// 8-channel blocks of pairs on AVX2), or their high part w &gt;&gt; 8 when <paramref name="weightsLo"/> is given.</param>
        /// <param name="weightsLo">Empty, or the low part w &amp; 255 of weights wider than 10 bits.</param>
        /// <param name="im2col">At least <see cref="ConvDispatch.ScratchShortsPerRow"/> x the tile's output rows.</param>
        /// <param name="acc">At least output pixels x tile.CoCount, unless the tile <see cref="RequantisesFromRegisters"/> (then unused).</param>
        public static void Conv(QLayer l, ConvTile t, Span<short> input, Span<short> weightsHi, Span<short> weightsLo, Span<int> multipliers, Span<int> offsets,
            Span<short> output, Span<int> wideOutput, Span<short> im2col, Span<long> acc)
        {
            int kp = l.WeightStride, pixels = t.OyCount * l.OutW, coCount = t.CoCount;
            bool split = weightsLo.Length > 0;
            bool exact32 = !split && l.AccumulatorBits <= 32;
            int chunk = exact32 ? kp : SafeChunk;
            bool avx512Store = Avx512Store(l, coCount), avx2Store = Avx2Store(l, coCount);
            bool neonStore = AdvSimd.Arm64.IsSupported && !l.WideOutput && l.OutShift > 0 && l.AccumulatorBits <= 32 && coCount >= 4;
            bool vectorStore = avx512Store || avx2Store || neonStore;
            bool fused = RequantisesFromRegisters(l, coCount, split);
            int padded = (coCount + 7) & ~7; // the AVX2 kernel requantises whole blocks of 8 channels
            Span<long> mul = vectorStore ? stackalloc long[padded] : default, add = vectorStore ? stackalloc long[padded] : default;
            if (vectorStore)
                for (int c = 0; c < coCount; c++)
                {
                    mul[c] = multipliers[t.CoStart + c];
                    add[c] = ((long)offsets[t.CoStart + c] << l.OffsetShift) + (1L << (l.OutShift - 1)); // the rounding of RoundShift folded in
                }
            if (!fused)
            {
                acc = acc.Slice(0, pixels * coCount);
                acc.Clear();
            }
            // Where the kernel reads the input tensor in place (its taps point at input rows, padding at a zero row), there is no im2col copy.
            bool implicitRows = Im2ColShortsPerPixel(l, split) == 0 && Im2ColShortsPerPixel(l) > 0;
            Span<short> rows = implicitRows ? input : Im2ColShortsPerPixel(l) > 0 ? Im2Col(l, t, input, im2col) : input.Slice((t.OyStart - t.InRowBase) * l.InW * kp, pixels * kp);
            fixed (short* a = rows, wh = weightsHi, wl = weightsLo)
            fixed (long* s = acc, m = mul, o = add)
            {
                if (Avx512BW.IsSupported)
                {
                    TapTile(l, t, implicitRows, a, wh, chunk, s, split ? ConvDispatch.SplitShift : 0);
                    if (split) TapTile(l, t, false, a, wl, chunk, s, 0);
                }
                else if (fused)
                {
                    var rq = new Requantization(l);
                    fixed (short* y = output)
                    {
                        var sink = new BlockSink { Output = y + t.OutIndex(l, t.OyStart, 0, t.CoStart), OutStride = t.OutChannelStride, Mul = m, Add = o, Rq = &rq };
                        BlockedTile(l, t, implicitRows, a, wh, kp, s, 0, &sink);
                    }
                    return;
                }
                else if (Avx2.IsSupported)
                {
                    // one lane is one output here, not a share of one: a shorter chunk keeps it exact (see BlockedTile)
                    int laneChunk = exact32 ? kp : BlockedChunk;
                    BlockedTile(l, t, implicitRows, a, wh, laneChunk, s, split ? ConvDispatch.SplitShift : 0, null);
                    if (split) BlockedTile(l, t, false, a, wl, laneChunk, s, 0, null);
                }
                else
                {
                    DotTile(a, pixels, wh, coCount, kp, chunk, s, split ? ConvDispatch.SplitShift : 0);
                    if (split) DotTile(a, pixels, wl, coCount, kp, chunk, s, 0);
                }
            }
            for (int p = 0; p < pixels; p++)
            {
                int oy = t.OyStart + p / l.OutW, ox = p % l.OutW, first = t.OutIndex(l, oy, ox, t.CoStart), row = p * coCount, c = 0;
                if (avx512Store) c = RequantizeRow(l, acc.Slice(row, coCount), mul, add, output.Slice(first, coCount));
                else if (avx2Store) c = RequantizeRowAvx2(l, acc.Slice(row, coCount), mul, add, output.Slice(first, coCount));
                else if (neonStore) c = RequantizeRowNeon(l, acc.Slice(row, coCount), mul, add, output.Slice(first, coCount));
                for (; c < coCount; c++)
                    ReferenceKernels.Store(l, acc[row + c], multipliers[t.CoStart + c], offsets[t.CoStart + c], first + c, output, wideOutput);
            }
        }

        /// <summary>
        /// <see cref="FixedPoint.Requantize"/> and saturation for 16 channels at a time (AVX-512, 64-bit lanes):
        /// (acc * m + (offset &lt;&lt; OffsetShift) + 2^(OutShift-1)) &gt;&gt; OutShift, clamped to [ReLU ? 0 : min, max].
        /// Returns how many channels it did; the caller finishes the rest with the scalar path.
        /// </summary>
        static int RequantizeRow(QLayer l, Span<long> acc, Span<long> mul, Span<long> add, Span<short> output)
        {
            var lo = Vector512.Create(l.Relu ? 0L : -(1L << (l.OutBits - 1)));
            var hi = Vector512.Create((1L << (l.OutBits - 1)) - 1);
            int c = 0;
            fixed (long* a = acc, m = mul, o = add)
            fixed (short* y = output)
                for (; c + 16 <= acc.Length; c += 16)
                {
                    var v0 = Vector512.Load(a + c) * Vector512.Load(m + c) + Vector512.Load(o + c);
                    var v1 = Vector512.Load(a + c + 8) * Vector512.Load(m + c + 8) + Vector512.Load(o + c + 8);
                    v0 = Vector512.Min(Vector512.Max(Vector512.ShiftRightArithmetic(v0, l.OutShift), lo), hi);
                    v1 = Vector512.Min(Vector512.Max(Vector512.ShiftRightArithmetic(v1, l.OutShift), lo), hi);
                    Avx512BW.ConvertToVector256Int16(Vector512.Narrow(v0, v1)).Store(y + c);
                }
            return c;
        }

        /// <summary>
        /// <see cref="RequantizeRow"/> on AVX2, 8 channels at a time, for layers whose accumulators are proven to fit
        /// 32 bits: vpmuldq multiplies the low (signed 32-bit) halves of the 64-bit accumulator and multiplier lanes
        /// into exact 64-bit products; the arithmetic shift AVX2 lacks is a logical one with the sign restored
        /// ((x &gt;&gt;&gt; s) ^ t) - t, t = 2^(63-s); clamped with 64-bit compares, packed to int16.
        /// </summary>
        static int RequantizeRowAvx2(QLayer l, Span<long> acc, Span<long> mul, Span<long> add, Span<short> output)
        {
            var rq = new Requantization(l);
            int c = 0;
            fixed (long* a = acc, m = mul, o = add)
            fixed (short* y = output)
                for (; c + 8 <= acc.Length; c += 8)
                    Requantize8(Avx.LoadVector256(a + c), Avx.LoadVector256(a + c + 4), m + c, o + c, &rq).Store(y + c);
            return c;
        }

        /// <summary>
        /// <see cref="RequantizeRow"/> on arm64 NEON, 4 channels at a time, for layers whose accumulators are proven to fit
        /// 32 bits: smull multiplies the narrowed accumulator and multiplier into exact 64-bit products, sshl by a negative
        /// count is the arithmetic shift, sqxtn saturates to int32, then a clamp to the output range and a narrowing to int16.
        /// </summary>
        static int RequantizeRowNeon(QLayer l, Span<long> acc, Span<long> mul, Span<long> add, Span<short> output)
        {
            var lo = Vector128.Create(l.Relu ? 0 : -(1 << (l.OutBits - 1)));
            var hi = Vector128.Create((1 << (l.OutBits - 1)) - 1);
            var shift = Vector128.Create(-(long)l.OutShift);
            int c = 0;
            fixed (long* a = acc, m = mul, o = add)
            fixed (short* y = output)
                for (; c + 4 <= acc.Length; c += 4)
                {
                    var p0 = AdvSimd.MultiplyWideningLower(AdvSimd.ExtractNarrowingLower(AdvSimd.LoadVector128(a + c)), AdvSimd.ExtractNarrowingLower(AdvSimd.LoadVector128(m + c)));
                    var p1 = AdvSimd.MultiplyWideningLower(AdvSimd.ExtractNarrowingLower(AdvSimd.LoadVector128(a + c + 2)), AdvSimd.ExtractNarrowingLower(AdvSimd.LoadVector128(m + c + 2)));
                    p0 = AdvSimd.ShiftArithmetic(AdvSimd.Add(p0, AdvSimd.LoadVector128(o + c)), shift);
                    p1 = AdvSimd.ShiftArithmetic(AdvSimd.Add(p1, AdvSimd.LoadVector128(o + c + 2)), shift);
                    var v = AdvSimd.ExtractNarrowingSaturateUpper(AdvSimd.ExtractNarrowingSaturateLower(p0), p1);
                    AdvSimd.Store(y + c, AdvSimd.ExtractNarrowingLower(AdvSimd.Min(AdvSimd.Max(v, lo), hi)));
                }
            return c;
        }

        /// <summary>The constants of <see cref="Requantize8"/> for one layer.</summary>
        struct Requantization
        {
            public Vector256<long> Lo, Hi, Sign;
            public Vector128<long> Count;
            public static readonly Vector256<int> LowHalves = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7);

            public Requantization(QLayer l)
            {
                Lo = Vector256.Create(l.Relu ? 0L : -(1L << (l.OutBits - 1)));
                Hi = Vector256.Create((1L << (l.OutBits - 1)) - 1);
                Count = Vector128.CreateScalar((long)l.OutShift);
                Sign = Vector256.Create(1L << (63 - l.OutShift));
            }
        }

        /// <summary>8 channels' accumulators (as two vectors of 4 longs, within 32 bits) to 8 saturated int16 outputs.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<short> Requantize8(Vector256<long> a0, Vector256<long> a1, long* m, long* o, Requantization* rq)
        {
            var v0 = Avx2.Add(Avx2.Multiply(a0.AsInt32(), Avx.LoadVector256(m).AsInt32()), Avx.LoadVector256(o));
            var v1 = Avx2.Add(Avx2.Multiply(a1.AsInt32(), Avx.LoadVector256(m + 4).AsInt32()), Avx.LoadVector256(o + 4));
            v0 = Clamp(Avx2.Subtract(Avx2.Xor(Avx2.ShiftRightLogical(v0, rq->Count), rq->Sign), rq->Sign), rq->Lo, rq->Hi);
            v1 = Clamp(Avx2.Subtract(Avx2.Xor(Avx2.ShiftRightLogical(v1, rq->Count), rq->Sign), rq->Sign), rq->Lo, rq->Hi);
            // the low 32 bits of each lane hold the int16 result: gather them, then pack
            var p0 = Avx2.PermuteVar8x32(v0.AsInt32(), Requantization.LowHalves).GetLower();
            var p1 = Avx2.PermuteVar8x32(v1.AsInt32(), Requantization.LowHalves).GetLower();
            return Sse2.PackSignedSaturate(p0, p1);
        }

        static Vector256<long> Clamp(Vector256<long> v, Vector256<long> lo, Vector256<long> hi)
        {
            v = Avx2.BlendVariable(v, hi, Avx2.CompareGreaterThan(v, hi));
            return Avx2.BlendVariable(v, lo, Avx2.CompareGreaterThan(lo, v));
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
                    // the kernel row's taps inside the image are one run of input pixels: one copy per kernel row
                    int ix0 = ox * l.StrideW - l.PadLeft, kx0 = Math.Max(0, -ix0), kx1 = Math.Min(l.KernelW, l.InW - ix0);
                    if (kx1 <= kx0) continue;
                    for (int ky = 0; ky < l.KernelH; ky++)
                    {
                        int iy = oy * l.StrideH + ky - l.PadTop;
                        if (iy < 0 || iy >= l.InH) continue;
                        input.Slice(((iy - t.InRowBase) * l.InW + ix0 + kx0) * l.InC, (kx1 - kx0) * l.InC).CopyTo(rows.Slice(row + (ky * l.KernelW + kx0) * l.InC));
                    }
                }
            return rows;
        }

        /// <summary>
        /// AVX-512: acc[p][c] += dot(pixel p, weight row c) * 2^shift in 4x4 blocks (edges repeat the last
        /// pixel or channel and drop the extra results). A pixel is a table of taps, each a pointer to
        /// <c>seg</c> values: with <paramref name="implicitRows"/> the kernel taps read the input tensor in
        /// place (padding taps read a zero row: no im2col copy); otherwise one tap, the pixel's row in <paramref name="a"/>.
        /// </summary>
        static void TapTile(QLayer l, ConvTile t, bool implicitRows, short* a, short* w, int chunk, long* acc, int shift)
        {
            int kp = l.WeightStride, pixels = t.OyCount * l.OutW, cols = t.CoCount;
            int taps = implicitRows ? l.KernelH * l.KernelW : 1, seg = implicitRows ? l.InC : kp;
            short* zero = stackalloc short[implicitRows ? seg : 1]; // stackalloc is zeroed: the padding taps' row
            short** table = stackalloc short*[4 * taps];
            long* r = stackalloc long[16];
            for (int p0 = 0; p0 < pixels; p0 += 4)
            {
                for (int q = 0; q < 4; q++) PixelTaps(l, t, implicitRows, a, zero, Math.Min(p0 + q, pixels - 1), table + q * taps);
                for (int c0 = 0; c0 < cols; c0 += 4)
                {
                    Dot4x4Taps(table, taps, seg, w + (long)c0 * kp, w + (long)Math.Min(c0 + 1, cols - 1) * kp, w + (long)Math.Min(c0 + 2, cols - 1) * kp,
                        w + (long)Math.Min(c0 + 3, cols - 1) * kp, implicitRows ? seg : chunk, r);
                    for (int q = 0; q < 4 && p0 + q < pixels; q++)
                        for (int c = 0; c < 4 && c0 + c < cols; c++) acc[(p0 + q) * cols + c0 + c] += r[q * 4 + c] << shift;
                }
            }
        }

        /// <summary>
        /// The taps of output pixel <paramref name="p"/> of the tile: with <paramref name="implicitRows"/> one pointer per kernel
        /// position, at that input pixel's channels in the input tensor (<paramref name="zero"/> where it is padding); otherwise
        /// one, the pixel's row in <paramref name="a"/> (im2col or direct rows).
        /// </summary>
        static void PixelTaps(QLayer l, ConvTile t, bool implicitRows, short* a, short* zero, int p, short** taps)
        {
            if (!implicitRows) { taps[0] = a + (long)p * l.WeightStride; return; }
            int oy = t.OyStart + p / l.OutW, ox = p % l.OutW, tap = 0;
            for (int ky = 0; ky < l.KernelH; ky++)
            {
                int iy = oy * l.StrideH + ky - l.PadTop;
                for (int kx = 0, ix = ox * l.StrideW - l.PadLeft; kx < l.KernelW; kx++, ix++, tap++)
                    taps[tap] = iy < 0 || iy >= l.InH || ix < 0 || ix >= l.InW ? zero : a + ((long)(iy - t.InRowBase) * l.InW + ix) * l.InC;
            }
        }

        /// <summary>
        /// Four pixels (tap tables) against four weight rows, 16 accumulators in AVX-512 registers.
        /// Lanes flush into 64-bit sums every <paramref name="chunk"/> values of a segment; int.MaxValue means
        /// never before the end, allowed only where the layer's proven bound fits 32 bits.
        /// </summary>
        static void Dot4x4Taps(short** table, int taps, int seg, short* w0, short* w1, short* w2, short* w3, int chunk, long* r)
        {
            for (int i = 0; i < 16; i++) r[i] = 0;
            bool chunked = chunk < seg; // only with one tap (im2col or direct rows)
            for (int k0 = 0; k0 < seg; k0 += chunked ? chunk : seg)
            {
                int kEnd = chunked ? Math.Min(seg, k0 + chunk) : seg;
                Vector512<int> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
                Vector512<int> c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
                for (int tap = 0; tap < taps; tap++)
                {
                    short* a0 = table[tap], a1 = table[taps + tap], a2 = table[2 * taps + tap], a3 = table[3 * taps + tap];
                    short* v0 = w0 + tap * seg, v1 = w1 + tap * seg, v2 = w2 + tap * seg, v3 = w3 + tap * seg;
                    for (int k = k0; k < kEnd; k += 32)
                    {
                        bool half = k + 32 > kEnd;
                        var x0 = Load32(a0 + k, half); var x1 = Load32(a1 + k, half); var x2 = Load32(a2 + k, half); var x3 = Load32(a3 + k, half);
                        var v = Load32(v0 + k, half);
                        c00 += Avx512BW.MultiplyAddAdjacent(x0, v); c10 += Avx512BW.MultiplyAddAdjacent(x1, v); c20 += Avx512BW.MultiplyAddAdjacent(x2, v); c30 += Avx512BW.MultiplyAddAdjacent(x3, v);
                        v = Load32(v1 + k, half);
                        c01 += Avx512BW.MultiplyAddAdjacent(x0, v); c11 += Avx512BW.MultiplyAddAdjacent(x1, v); c21 += Avx512BW.MultiplyAddAdjacent(x2, v); c31 += Avx512BW.MultiplyAddAdjacent(x3, v);
                        v = Load32(v2 + k, half);
                        c02 += Avx512BW.MultiplyAddAdjacent(x0, v); c12 += Avx512BW.MultiplyAddAdjacent(x1, v); c22 += Avx512BW.MultiplyAddAdjacent(x2, v); c32 += Avx512BW.MultiplyAddAdjacent(x3, v);
                        v = Load32(v3 + k, half);
                        c03 += Avx512BW.MultiplyAddAdjacent(x0, v); c13 += Avx512BW.MultiplyAddAdjacent(x1, v); c23 += Avx512BW.MultiplyAddAdjacent(x2, v); c33 += Avx512BW.MultiplyAddAdjacent(x3, v);
                    }
                }
                r[0] += Sum(c00); r[1] += Sum(c01); r[2] += Sum(c02); r[3] += Sum(c03);
                r[4] += Sum(c10); r[5] += Sum(c11); r[6] += Sum(c12); r[7] += Sum(c13);
                r[8] += Sum(c20); r[9] += Sum(c21); r[10] += Sum(c22); r[11] += Sum(c23);
                r[12] += Sum(c30); r[13] += Sum(c31); r[14] += Sum(c32); r[15] += Sum(c33);
            }
        }

        /// <summary>Values of K per flush into 64-bit sums where one lane is one output: 64 products of |w| &lt;= 2^9 by |x| &lt;= 2^15 stay below 2^31.</summary>
        const int BlockedChunk = 64;

        /// <summary>
        /// AVX2: acc[p][c] += dot(pixel row p, weight channel c) * 2^shift, the weights in 8-channel blocks of pairs
        /// (<see cref="WeightLayout"/>, block 8). Blocks of 6 pixels x 16 channels (x 8 for a last odd block): each
        /// step broadcasts one input pair of every pixel (two int16 read as one int32) and multiplies it against two
        /// vectors of 8 channels' pairs (vpmaddwd, or vpdpwssd with AVX-VNNI). The 12 accumulators stay in registers,
        /// one output per lane, so there is no horizontal sum. Lanes flush into the 64-bit sums every
        /// <paramref name="chunk"/> values: <see cref="BlockedChunk"/> for any layer, all of K where the proven bound fits 32 bits.
        /// Pixels past the end repeat the last one and channels past <paramref name="cols"/> are padding: both are dropped.
        /// </summary>
        static void BlockedTile(QLayer l, ConvTile t, bool implicitRows, short* a, short* w, int chunk, long* acc, int shift, BlockSink* sink)
        {
            int kp = l.WeightStride, pixels = t.OyCount * l.OutW, cols = t.CoCount, blocks = (cols + 7) / 8;
            int taps = implicitRows ? l.KernelH * l.KernelW : 1, seg = implicitRows ? l.InC : kp;
            long blockShorts = 8L * kp;
            short* zero = stackalloc short[implicitRows ? seg : 1]; // stackalloc is zeroed: the padding taps' row
            short** table = stackalloc short*[6 * taps];
            var at = new BlockAt { Taps = taps, SegPairs = seg / 2, Ld = cols, Shift = shift };
            for (int p0 = 0; p0 < pixels; p0 += 6)
            {
                for (int q = 0; q < 6; q++) PixelTaps(l, t, implicitRows, a, zero, Math.Min(p0 + q, pixels - 1), table + q * taps);
                at.P0 = p0;
                at.Rows = Math.Min(6, pixels - p0);
                for (int b = 0; b < blocks; b += 2)
                {
                    at.C0 = b * 8;
                    at.Cols = Math.Min(16, cols - b * 8);
                    // with taps the whole of K is one chunk (implicit rows need the 32-bit bound); else chunks of one segment
                    for (int k0 = 0; k0 < seg; k0 += chunk)
                    {
                        at.J0 = k0 >> 1;
                        at.J1 = Math.Min(seg, k0 + chunk) >> 1;
                        if (b + 2 <= blocks) Block6<TwoVectors>(table, w + b * blockShorts, blockShorts, ref at, acc, sink);
                        else Block6<OneVector>(table, w + b * blockShorts, blockShorts, ref at, acc, sink);
                    }
                }
            }
        }

        /// <summary>Where one <see cref="Block6"/> call sits: its pixels and channels, the taps, and the pairs of each tap's segment it takes.</summary>
        struct BlockAt
        {
            public int P0, Rows, C0, Cols, Ld, Taps, SegPairs, J0, J1, Shift;
        }

        /// <summary>Where <see cref="BlockedTile"/> requantises to, instead of adding to 64-bit sums: pixel p's channel c at Output[p * OutStride + c].</summary>
        struct BlockSink
        {
            public short* Output;
            public int OutStride;
            public long* Mul, Add; // per channel of the tile, padded to whole blocks of 8
            public Requantization* Rq;
        }

        interface IBlockWidth { static abstract bool Two { get; } }
        struct OneVector : IBlockWidth { public static bool Two => false; }
        struct TwoVectors : IBlockWidth { public static bool Two => true; }

        /// <summary>
        /// Pixels [at.P0, +at.Rows) x channels [at.C0, +at.Cols) (8 or 16 wide: <typeparamref name="TWidth"/>, a compile-time
        /// constant per instantiation) of <see cref="BlockedTile"/>, pairs [at.J0, at.J1) of every tap: added to the 64-bit sums
        /// acc[p][c] (at.Ld per pixel), or requantised into the <paramref name="sink"/>.
        /// </summary>
        static void Block6<TWidth>(short** table, short* w, long blockShorts, ref BlockAt at, long* acc, BlockSink* sink) where TWidth : struct, IBlockWidth
        {
            int taps = at.Taps, j0 = at.J0, j1 = at.J1;
            Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int tap = 0; tap < taps; tap++)
            {
                int* x0 = (int*)table[tap], x1 = (int*)table[taps + tap], x2 = (int*)table[2 * taps + tap];
                int* x3 = (int*)table[3 * taps + tap], x4 = (int*)table[4 * taps + tap], x5 = (int*)table[5 * taps + tap];
                short* wa = w + (long)tap * at.SegPairs * 16, wb = wa + blockShorts;
                for (int j = j0; j < j1; j++)
                {
                    var v0 = Avx.LoadVector256(wa + 16 * j);
                    var v1 = TWidth.Two ? Avx.LoadVector256(wb + 16 * j) : default;
                    var x = Vector256.Create(x0[j]).AsInt16();
                    c00 = Mac(c00, x, v0); if (TWidth.Two) c01 = Mac(c01, x, v1);
                    x = Vector256.Create(x1[j]).AsInt16();
                    c10 = Mac(c10, x, v0); if (TWidth.Two) c11 = Mac(c11, x, v1);
                    x = Vector256.Create(x2[j]).AsInt16();
                    c20 = Mac(c20, x, v0); if (TWidth.Two) c21 = Mac(c21, x, v1);
                    x = Vector256.Create(x3[j]).AsInt16();
                    c30 = Mac(c30, x, v0); if (TWidth.Two) c31 = Mac(c31, x, v1);
                    x = Vector256.Create(x4[j]).AsInt16();
                    c40 = Mac(c40, x, v0); if (TWidth.Two) c41 = Mac(c41, x, v1);
                    x = Vector256.Create(x5[j]).AsInt16();
                    c50 = Mac(c50, x, v0); if (TWidth.Two) c51 = Mac(c51, x, v1);
                }
            }
            int rows = at.Rows, p0 = at.P0, c0 = at.C0, cols = at.Cols;
            if (sink != null)
            {
                // the whole of K was one chunk (the bound fits 32 bits): these are the final sums
                Emit(c00, c01, sink, p0, c0, cols);
                if (rows > 1) Emit(c10, c11, sink, p0 + 1, c0, cols);
                if (rows > 2) Emit(c20, c21, sink, p0 + 2, c0, cols);
                if (rows > 3) Emit(c30, c31, sink, p0 + 3, c0, cols);
                if (rows > 4) Emit(c40, c41, sink, p0 + 4, c0, cols);
                if (rows > 5) Emit(c50, c51, sink, p0 + 5, c0, cols);
                return;
            }
            int ld = at.Ld, shift = at.Shift;
            long* sums = acc + (long)p0 * ld + c0;
            Flush(c00, c01, sums, cols, shift);
            if (rows > 1) Flush(c10, c11, sums + ld, cols, shift);
            if (rows > 2) Flush(c20, c21, sums + 2 * ld, cols, shift);
            if (rows > 3) Flush(c30, c31, sums + 3 * ld, cols, shift);
            if (rows > 4) Flush(c40, c41, sums + 4 * ld, cols, shift);
            if (rows > 5) Flush(c50, c51, sums + 5 * ld, cols, shift);
        }

        /// <summary>Requantises 16 (or the first <paramref name="cols"/>) channels of pixel <paramref name="p"/> into the sink.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Emit(Vector256<int> lo, Vector256<int> hi, BlockSink* sink, int p, int c0, int cols)
        {
            short* y = sink->Output + (long)p * sink->OutStride + c0;
            var r = Requantize8(Avx2.ConvertToVector256Int64(lo.GetLower()), Avx2.ConvertToVector256Int64(lo.GetUpper()), sink->Mul + c0, sink->Add + c0, sink->Rq);
            if (cols >= 8) r.Store(y);
            else for (int c = 0; c < cols; c++) y[c] = r.GetElement(c);
            if (cols <= 8) return;
            r = Requantize8(Avx2.ConvertToVector256Int64(hi.GetLower()), Avx2.ConvertToVector256Int64(hi.GetUpper()), sink->Mul + c0 + 8, sink->Add + c0 + 8, sink->Rq);
            if (cols >= 16) r.Store(y + 8);
            else for (int c = 8; c < cols; c++) y[c] = r.GetElement(c - 8);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<int> Mac(Vector256<int> c, Vector256<short> x, Vector256<short> w) =>
            AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(c, x, w) : Avx2.Add(c, Avx2.MultiplyAddAdjacent(x, w));

        /// <summary>Adds 16 (or the first <paramref name="cols"/>) int32 lanes, widened and shifted, to the 64-bit sums at <paramref name="acc"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Flush(Vector256<int> lo, Vector256<int> hi, long* acc, int cols, int shift)
        {
            if (cols >= 8)
            {
                Add4(acc, lo.GetLower(), shift);
                Add4(acc + 4, lo.GetUpper(), shift);
                if (cols >= 16)
                {
                    Add4(acc + 8, hi.GetLower(), shift);
                    Add4(acc + 12, hi.GetUpper(), shift);
                    return;
                }
            }
            for (int c = cols & ~7; c < cols; c++) acc[c] += (long)(c < 8 ? lo.GetElement(c) : hi.GetElement(c - 8)) << shift;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Add4(long* acc, Vector128<int> v, int shift) =>
            Avx.Store(acc, Avx2.Add(Avx.LoadVector256(acc), Vector256.ShiftLeft(Avx2.ConvertToVector256Int64(v), shift)));

        /// <summary>arm64 NEON: acc[p][c] += dot(a[p], w[c]) * 2^shift for all pixel rows p and channel rows c (both of length kp).</summary>
        static void DotTile(short* a, int rows, short* w, int cols, int kp, int chunk, long* acc, int shift)
        {
            int p = 0;
            for (; p + 2 <= rows; p += 2)
            {
                int c = 0;
                for (; c + 4 <= cols; c += 4)
                {
                    Dot2x4Neon(a + p * kp, w + c * kp, kp, chunk, acc + p * cols + c, cols, shift);
                }
                for (; c < cols; c++)
                {
                    acc[p * cols + c] += Dot1x1Neon(a + p * kp, w + c * kp, kp, chunk) << shift;
                    acc[(p + 1) * cols + c] += Dot1x1Neon(a + (p + 1) * kp, w + c * kp, kp, chunk) << shift;
                }
            }
            for (; p < rows; p++)
                for (int c = 0; c < cols; c++)
                    acc[p * cols + c] += Dot1x1Neon(a + p * kp, w + c * kp, kp, chunk) << shift;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static long Sum(Vector512<int> v)
        {
            // 16 lanes of at most 2^30 each (see SafeChunk) can exceed int32 when summed: widen first.
            var (lo, hi) = Vector512.Widen(v);
            return Vector512.Sum(lo + hi);
        }

        /// <summary>16 bytes-per-lane pairs: 32 int16 products per vpmaddwd on AVX-512; the 16-wide tail of K uses the lower half.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<short> Load32(short* p, bool half) =>
            half ? Vector512.Create(Vector256.Load(p), Vector256<short>.Zero) : Vector512.Load(p);

        // arm64: smlal multiplies the low four int16 lanes into int32 lanes and adds, smlal2 the high
        // four. Low and high go to separate accumulators, so a lane gets one product per 8 values of K:
        // 64 per SafeChunk, the same bound as vpmaddwd's two per 16.

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<int> MacLow(Vector128<int> c, Vector128<short> x, Vector128<short> w) => AdvSimd.MultiplyWideningLowerAndAdd(c, x.GetLower(), w.GetLower());

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<int> MacHigh(Vector128<int> c, Vector128<short> x, Vector128<short> w) => AdvSimd.MultiplyWideningUpperAndAdd(c, x, w);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static long Sum(Vector128<int> lo, Vector128<int> hi)
        {
            var (a, b) = Vector128.Widen(lo);
            var (c, d) = Vector128.Widen(hi);
            return Vector128.Sum(a + b + c + d);
        }

        static void Dot2x4Neon(short* a0, short* w0, int kp, int chunk, long* acc, int ldAcc, int shift)
        {
            short* a1 = a0 + kp, w1 = w0 + kp, w2 = w1 + kp, w3 = w2 + kp;
            long s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            for (int k0 = 0; k0 < kp; k0 += chunk)
            {
                int end = Math.Min(kp, k0 + chunk);
                Vector128<int> l00 = default, l01 = default, l02 = default, l03 = default, l10 = default, l11 = default, l12 = default, l13 = default;
                Vector128<int> h00 = default, h01 = default, h02 = default, h03 = default, h10 = default, h11 = default, h12 = default, h13 = default;
                for (int k = k0; k < end; k += 8)
                {
                    var x0 = AdvSimd.LoadVector128(a0 + k); var x1 = AdvSimd.LoadVector128(a1 + k);
                    var v = AdvSimd.LoadVector128(w0 + k);
                    l00 = MacLow(l00, x0, v); h00 = MacHigh(h00, x0, v); l10 = MacLow(l10, x1, v); h10 = MacHigh(h10, x1, v);
                    v = AdvSimd.LoadVector128(w1 + k);
                    l01 = MacLow(l01, x0, v); h01 = MacHigh(h01, x0, v); l11 = MacLow(l11, x1, v); h11 = MacHigh(h11, x1, v);
                    v = AdvSimd.LoadVector128(w2 + k);
                    l02 = MacLow(l02, x0, v); h02 = MacHigh(h02, x0, v); l12 = MacLow(l12, x1, v); h12 = MacHigh(h12, x1, v);
                    v = AdvSimd.LoadVector128(w3 + k);
                    l03 = MacLow(l03, x0, v); h03 = MacHigh(h03, x0, v); l13 = MacLow(l13, x1, v); h13 = MacHigh(h13, x1, v);
                }
                s00 += Sum(l00, h00); s01 += Sum(l01, h01); s02 += Sum(l02, h02); s03 += Sum(l03, h03);
                s10 += Sum(l10, h10); s11 += Sum(l11, h11); s12 += Sum(l12, h12); s13 += Sum(l13, h13);
            }
            acc[0] += s00 << shift; acc[1] += s01 << shift; acc[2] += s02 << shift; acc[3] += s03 << shift;
            acc[ldAcc] += s10 << shift; acc[ldAcc + 1] += s11 << shift; acc[ldAcc + 2] += s12 << shift; acc[ldAcc + 3] += s13 << shift;
        }

        static long Dot1x1Neon(short* a, short* w, int kp, int chunk)
        {
            long s = 0;
            for (int k0 = 0; k0 < kp; k0 += chunk)
            {
                int end = Math.Min(kp, k0 + chunk);
                Vector128<int> lo = default, hi = default;
                for (int k = k0; k < end; k += 8)
                {
                    var x = AdvSimd.LoadVector128(a + k); var v = AdvSimd.LoadVector128(w + k);
                    lo = MacLow(lo, x, v); hi = MacHigh(hi, x, v);
                }
                s += Sum(lo, hi);
            }
            return s;
        }
    }
}
#endif
