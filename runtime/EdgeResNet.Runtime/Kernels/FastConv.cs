#if NET
using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// Conv with int16 x int16 -> int32 multiply-add (AVX-512 and AVX2 vpmaddwd, 32 and 16 MACs per instruction, or
    /// AVX-VNNI vpdpwssd; arm64 NEON smlal, 4 MACs each). All three share one structure (<see cref="BlockedTile"/>):
    /// register-blocked over pair-interleaved weights, the input read in place, requantised straight from the
    /// registers where the bound fits 32 bits.
    /// bit-exact with <see cref="ReferenceKernels.Conv"/>: lanes accumulate in int32 over chunks of K
    /// short enough that no lane can overflow (|w| &lt;= 2^9, |x| &lt;= 2^15, 64 products per lane per
    /// chunk), then flush into 64-bit sums; a layer whose proven bound fits 32 bits takes all of K
    /// in one chunk. Weights wider than 10 bits are split by the caller (<see cref="ConvDispatch.Split"/>).
    /// </summary>
    public static unsafe partial class FastConv
    {
        /// <summary>AVX-512 requantises 16 channels of 64-bit sums at a time with its 64-bit multiply and arithmetic shift: no 32-bit bound needed.</summary>
        static bool Avx512Store(QLayer l, int coCount) => Avx512Kernel && !l.WideOutput && l.OutShift > 0 && coCount >= 16;

        /// <summary>An int16 output whose accumulators are proven to fit 32 bits: what the 32 x 32 -> 64-bit requantisations take.</summary>
        static bool Store32(QLayer l) => !l.WideOutput && l.OutShift > 0 && l.AccumulatorBits <= 32;

        /// <summary>AVX2 has no 64-bit multiply or arithmetic shift: its path multiplies 32 x 32 -> 64 bits, exact where the proven bound fits 32 bits.</summary>
        static bool Avx2Store(QLayer l, int coCount) => !Avx512Kernel && Avx2.IsSupported && Store32(l) && coCount >= 8;

        /// <summary>NEON multiplies 32 x 32 -> 64 bits (smull) and shifts arithmetically: exact where the proven bound fits 32 bits.</summary>
        static bool NeonStore(QLayer l, int coCount) => AdvSimd.Arm64.IsSupported && Store32(l) && coCount >= 4;

        /// <summary>
        /// A tile with a 32-bit bound (unsplit weights) requantises straight from the accumulator registers: no 64-bit sums
        /// in between, so it needs no accumulator buffer. AVX-512 does so for any channel count, AVX2 from one block of 8, NEON from 4.
        /// </summary>
        public static bool RequantisesFromRegisters(QLayer l, int coCount, bool split) =>
            !split && (Avx512Kernel && Store32(l) || Avx2Store(l, coCount) || NeonStore(l, coCount));

        /// <param name="block">The weights' <see cref="WeightLayout"/> block: <see cref="WeightChannelBlock"/> or <see cref="NarrowChannelBlock"/>.</param>
        /// <param name="weightsHi">The tile's weights in that layout, or their high part w &gt;&gt; 8 when <paramref name="weightsLo"/> is given.</param>
        /// <param name="weightsLo">Empty, or the low part w &amp; 255 of weights wider than 10 bits.</param>
        /// <param name="im2col">At least <see cref="ConvDispatch.ScratchShortsPerRow"/> x the tile's output rows.</param>
        /// <param name="acc">At least output pixels x tile.CoCount, unless the tile <see cref="RequantisesFromRegisters"/> (then unused).</param>
        public static void Conv(QLayer l, ConvTile t, int block, Span<short> input, Span<short> weightsHi, Span<short> weightsLo, Span<int> multipliers, Span<int> offsets,
            Span<short> output, Span<int> wideOutput, Span<short> im2col, Span<long> acc)
        {
            int kp = l.WeightStride, pixels = t.OyCount * l.OutW, coCount = t.CoCount;
            bool split = weightsLo.Length > 0;
            bool exact32 = !split && l.AccumulatorBits <= 32;
            bool avx512Store = Avx512Store(l, coCount), avx2Store = Avx2Store(l, coCount);
            bool neonStore = NeonStore(l, coCount);
            bool vectorStore = avx512Store || avx2Store || neonStore;
            bool fused = RequantisesFromRegisters(l, coCount, split);
            int padded = (coCount + 15) & ~15; // the blocked kernels requantise whole blocks of 8 or 16 channels
            Span<long> mul = vectorStore || fused ? stackalloc long[padded] : default, add = vectorStore || fused ? stackalloc long[padded] : default;
            if (vectorStore || fused)
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
            var rq = vectorStore || fused ? new Requantization(l) : default; // the layer's constants, once per call
            fixed (short* a = rows, wh = weightsHi, wl = weightsLo)
            fixed (long* s = acc, m = mul, o = add)
            {
                if (fused)
                {
                    fixed (short* y = output)
                    {
                        var sink = new BlockSink { Output = y + t.OutIndex(l, t.OyStart, 0, t.CoStart), OutStride = t.OutChannelStride, Mul = m, Add = o, Rq = &rq };
                        BlockedTile(l, t, block, implicitRows, a, wh, kp, s, 0, &sink);
                    }
                    return;
                }
                // one lane is one output here, not a share of one: a shorter chunk keeps it exact (see BlockedTile)
                int laneChunk = exact32 ? kp : BlockedChunk;
                BlockedTile(l, t, block, implicitRows, a, wh, laneChunk, s, split ? ConvDispatch.SplitShift : 0, null);
                if (split) BlockedTile(l, t, block, false, a, wl, laneChunk, s, 0, null);
            }
            for (int p = 0; p < pixels; p++)
            {
                int oy = t.OyStart + p / l.OutW, ox = p % l.OutW, first = t.OutIndex(l, oy, ox, t.CoStart), row = p * coCount, c = 0;
                if (avx512Store) c = RequantizeRow(acc.Slice(row, coCount), mul, add, output.Slice(first, coCount), &rq);
                else if (avx2Store) c = RequantizeRowAvx2(acc.Slice(row, coCount), mul, add, output.Slice(first, coCount), &rq);
                else if (neonStore) c = RequantizeRowNeon(acc.Slice(row, coCount), mul, add, output.Slice(first, coCount), &rq);
                for (; c < coCount; c++)
                    ReferenceKernels.Store(l, acc[row + c], multipliers[t.CoStart + c], offsets[t.CoStart + c], first + c, output, wideOutput);
            }
        }

        /// <summary>
        /// <see cref="FixedPoint.Requantize"/> and saturation for 16 channels at a time (AVX-512, 64-bit lanes):
        /// (acc * m + (offset &lt;&lt; OffsetShift) + 2^(OutShift-1)) &gt;&gt; OutShift, clamped to [ReLU ? 0 : min, max].
        /// Returns how many channels it did; the caller finishes the rest with the scalar path.
        /// </summary>
        static int RequantizeRow(Span<long> acc, Span<long> mul, Span<long> add, Span<short> output, Requantization* rq)
        {
            int c = 0;
            fixed (long* a = acc, m = mul, o = add)
            fixed (short* y = output)
                for (; c + 16 <= acc.Length; c += 16)
                    Requantize16(Vector512.Load(a + c), Vector512.Load(a + c + 8), m + c, o + c, rq).Store(y + c);
            return c;
        }

        /// <summary>16 channels' 64-bit sums (two vectors of 8) to 16 saturated int16 outputs on AVX-512 (vpmullq, vpsraq, a clamp, vpmovdw).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<short> Requantize16(Vector512<long> a0, Vector512<long> a1, long* m, long* o, Requantization* rq)
        {
            var v0 = a0 * Vector512.Load(m) + Vector512.Load(o);
            var v1 = a1 * Vector512.Load(m + 8) + Vector512.Load(o + 8);
            v0 = Vector512.Min(Vector512.Max(Vector512.ShiftRightArithmetic(v0, rq->Shift), rq->Lo512), rq->Hi512);
            v1 = Vector512.Min(Vector512.Max(Vector512.ShiftRightArithmetic(v1, rq->Shift), rq->Lo512), rq->Hi512);
            return Avx512BW.ConvertToVector256Int16(Vector512.Narrow(v0, v1));
        }

        /// <summary>
        /// <see cref="RequantizeRow"/> on AVX2, 8 channels at a time, for layers whose accumulators are proven to fit
        /// 32 bits: vpmuldq multiplies the low (signed 32-bit) halves of the 64-bit accumulator and multiplier lanes
        /// into exact 64-bit products; the arithmetic shift AVX2 lacks is a logical one with the sign restored
        /// ((x &gt;&gt;&gt; s) ^ t) - t, t = 2^(63-s); clamped with 64-bit compares, packed to int16.
        /// </summary>
        static int RequantizeRowAvx2(Span<long> acc, Span<long> mul, Span<long> add, Span<short> output, Requantization* rq)
        {
            int c = 0;
            fixed (long* a = acc, m = mul, o = add)
            fixed (short* y = output)
                for (; c + 8 <= acc.Length; c += 8)
                    Requantize8(Avx.LoadVector256(a + c), Avx.LoadVector256(a + c + 4), m + c, o + c, rq).Store(y + c);
            return c;
        }

        /// <summary><see cref="RequantizeRow"/> on arm64 NEON, 4 channels at a time (<see cref="Requantize4Neon"/>), for layers whose accumulators are proven to fit 32 bits.</summary>
        static int RequantizeRowNeon(Span<long> acc, Span<long> mul, Span<long> add, Span<short> output, Requantization* rq)
        {
            int c = 0;
            fixed (long* a = acc, m = mul, o = add)
            fixed (short* y = output)
                for (; c + 4 <= acc.Length; c += 4)
                    AdvSimd.Store(y + c, Requantize4Neon(AdvSimd.ExtractNarrowingUpper(AdvSimd.ExtractNarrowingLower(AdvSimd.LoadVector128(a + c)), AdvSimd.LoadVector128(a + c + 2)), m + c, o + c, rq));
            return c;
        }

        /// <summary>
        /// 4 channels' accumulators (within 32 bits) to 4 saturated int16 outputs on NEON: smull/smull2 multiply them by the
        /// (narrowed) multipliers into exact 64-bit products, sshl by a negative count is the arithmetic shift, sqxtn saturates
        /// to int32, then a clamp to the output range and a narrowing to int16.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector64<short> Requantize4Neon(Vector128<int> acc, long* m, long* o, Requantization* rq)
        {
            var m4 = AdvSimd.ExtractNarrowingUpper(AdvSimd.ExtractNarrowingLower(AdvSimd.LoadVector128(m)), AdvSimd.LoadVector128(m + 2));
            var p0 = AdvSimd.ShiftArithmetic(AdvSimd.Add(AdvSimd.MultiplyWideningLower(acc.GetLower(), m4.GetLower()), AdvSimd.LoadVector128(o)), rq->NegativeCount);
            var p1 = AdvSimd.ShiftArithmetic(AdvSimd.Add(AdvSimd.MultiplyWideningUpper(acc, m4), AdvSimd.LoadVector128(o + 2)), rq->NegativeCount);
            var v = AdvSimd.ExtractNarrowingSaturateUpper(AdvSimd.ExtractNarrowingSaturateLower(p0), p1);
            return AdvSimd.ExtractNarrowingLower(AdvSimd.Min(AdvSimd.Max(v, rq->Lo32), rq->Hi32));
        }

        /// <summary>The constants of <see cref="Requantize16"/> (AVX-512), <see cref="Requantize8"/> (AVX2) and <see cref="Requantize4Neon"/> for one layer.</summary>
        struct Requantization
        {
            public Vector512<long> Lo512, Hi512;
            public int Shift;
            public Vector256<long> Lo, Hi, Sign;
            public Vector128<long> Count, NegativeCount;
            public Vector128<int> Lo32, Hi32;
            public static readonly Vector256<int> LowHalves = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7);

            public Requantization(QLayer l)
            {
                long lo = l.Relu ? 0L : -(1L << (l.OutBits - 1)), hi = (1L << (l.OutBits - 1)) - 1;
                Lo512 = Vector512.Create(lo);
                Hi512 = Vector512.Create(hi);
                Shift = l.OutShift;
                Lo = Vector256.Create(lo);
                Hi = Vector256.Create(hi);
                Lo32 = Vector128.Create((int)lo);
                Hi32 = Vector128.Create((int)hi);
                Count = Vector128.CreateScalar((long)l.OutShift);
                NegativeCount = Vector128.Create(-(long)l.OutShift);
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
            int kp = l.WeightStride, run = l.KernelW * l.InC, k = l.KernelH * run;
            rows = rows.Slice(0, t.OyCount * l.OutW * kp);
            fixed (short* src = input, dst = rows)
                for (int oy = t.OyStart; oy < t.OyStart + t.OyCount; oy++)
                {
                    int iy0 = oy * l.StrideH - l.PadTop;
                    bool rowsInside = iy0 >= 0 && iy0 + l.KernelH <= l.InH;
                    for (int ox = 0; ox < l.OutW; ox++)
                    {
                        int row = ((oy - t.OyStart) * l.OutW + ox) * kp;
                        // the kernel row's taps inside the image are one run of input pixels: one copy per kernel row
                        int ix0 = ox * l.StrideW - l.PadLeft, kx0 = Math.Max(0, -ix0), kx1 = Math.Min(l.KernelW, l.InW - ix0);
                        if (rowsInside && kx0 == 0 && kx1 == l.KernelW)
                        {
                            // no padding tap (most pixels): whole runs, and only the pair padding past K cleared
                            short* from = src + ((iy0 - t.InRowBase) * l.InW + ix0) * l.InC;
                            for (int ky = 0; ky < l.KernelH; ky++) CopyRun(from + ky * l.InW * l.InC, dst + row + ky * run, run);
                            for (int i = k; i < kp; i++) dst[row + i] = 0;
                            continue;
                        }
                        rows.Slice(row, kp).Clear();
                        if (kx1 <= kx0) continue;
                        for (int ky = 0; ky < l.KernelH; ky++)
                        {
                            int iy = iy0 + ky;
                            if (iy < 0 || iy >= l.InH) continue;
                            input.Slice(((iy - t.InRowBase) * l.InW + ix0 + kx0) * l.InC, (kx1 - kx0) * l.InC).CopyTo(rows.Slice(row + (ky * l.KernelW + kx0) * l.InC));
                        }
                    }
                }
            return rows;
        }

        /// <summary>
        /// Copies <paramref name="n"/> int16 values in 16-byte vectors, the last one overlapping the one before where
        /// <paramref name="n"/> is not a multiple of 8 (the stem's runs are 21 values: a call per run cost more than the copy).
        /// </summary>
        static void CopyRun(short* from, short* to, int n)
        {
            if (n < 8)
            {
                for (int i = 0; i < n; i++) to[i] = from[i];
                return;
            }
            int j = 0;
            for (; j + 8 <= n; j += 8) Vector128.Store(Vector128.Load(from + j), to + j);
            if (j < n) Vector128.Store(Vector128.Load(from + n - 8), to + n - 8);
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

        /// <summary>Values of K per flush into 64-bit sums where one lane is one output: 64 products of |w| &lt;= 2^9 by |x| &lt;= 2^15 stay below 2^31.</summary>
        const int BlockedChunk = 64;

        /// <summary>
        /// acc[p][c] += dot(pixel row p, weight channel c) * 2^shift, the weights in blocks of pairs (<see cref="WeightLayout"/>,
        /// <paramref name="block"/>). Each step broadcasts one input pair of every pixel of a block (two int16 read
        /// as one int32) and multiplies it against the channels' pairs. AVX-512 and AVX2 (<see cref="Block6"/>): 6 pixels x two
        /// blocks (one for a last odd block) of 16 channels (AVX-512: <see cref="Avx512Isa"/>, vpmaddwd) or 8 (<see cref="Avx2Isa"/>,
        /// vpmaddwd, or vpdpwssd with AVX-VNNI; on AVX-512 CPUs too, for a layer the plan gives blocks of 8), 12 accumulators, one output per lane. NEON (<see cref="Block6Neon"/>): 6 pixels x
        /// 8 channels, smlal into 24 accumulators of one channel's even or odd products per lane, paired up once at the end (addp).
        /// Either way the accumulators stay in registers and there is no horizontal sum inside K. Lanes flush into the 64-bit
        /// sums every <paramref name="chunk"/> values: <see cref="BlockedChunk"/> for any layer, all of K where the proven bound
        /// fits 32 bits. Pixels past the end repeat the last one and channels past <paramref name="cols"/> are padding: both are dropped.
        /// </summary>
        static void BlockedTile(QLayer l, ConvTile t, int block, bool implicitRows, short* a, short* w, int chunk, long* acc, int shift, BlockSink* sink)
        {
            if (block != WeightChannelBlock && block != NarrowChannelBlock) throw new ArgumentException($"the SIMD conv reads blocks of {NarrowChannelBlock} or {WeightChannelBlock} channels here, not {block}");
            int kp = l.WeightStride, pixels = t.OyCount * l.OutW, cols = t.CoCount, blocks = (cols + block - 1) / block;
            int taps = implicitRows ? l.KernelH * l.KernelW : 1, seg = implicitRows ? l.InC : kp;
            long blockShorts = (long)block * kp;
            short* zero = stackalloc short[implicitRows ? seg : 1]; // stackalloc is zeroed: the padding taps' row
            short** table = stackalloc short*[6 * taps];
            var at = new BlockAt { Taps = taps, SegPairs = seg / 2, Ld = cols, Shift = shift };
            int step = AdvSimd.Arm64.IsSupported ? 1 : 2; // blocks per call: NEON's 32 registers hold 6 x 8 outputs as 24 accumulators
            for (int p0 = 0; p0 < pixels; p0 += 6)
            {
                for (int q = 0; q < 6; q++) PixelTaps(l, t, implicitRows, a, zero, Math.Min(p0 + q, pixels - 1), table + q * taps);
                at.P0 = p0;
                at.Rows = Math.Min(6, pixels - p0);
                for (int b = 0; b < blocks; b += step)
                {
                    at.C0 = b * block;
                    at.Cols = Math.Min(block * step, cols - b * block);
                    short* wb = w + b * blockShorts;
                    bool two = b + 2 <= blocks;
                    // with taps the whole of K is one chunk (implicit rows need the 32-bit bound); else chunks of one segment
                    for (int k0 = 0; k0 < seg; k0 += chunk)
                    {
                        at.J0 = k0 >> 1;
                        at.J1 = Math.Min(seg, k0 + chunk) >> 1;
                        if (step == 1) Block6Neon(table, wb, ref at, acc, sink);
                        else if (block == 16)
                        {
                            if (two) Block6<Avx512Isa, Vector512<int>, TwoVectors>(table, wb, blockShorts, ref at, acc, sink);
                            else Block6<Avx512Isa, Vector512<int>, OneVector>(table, wb, blockShorts, ref at, acc, sink);
                        }
                        else if (two) Block6<Avx2Isa, Vector256<int>, TwoVectors>(table, wb, blockShorts, ref at, acc, sink);
                        else Block6<Avx2Isa, Vector256<int>, OneVector>(table, wb, blockShorts, ref at, acc, sink);
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
            public long* Mul, Add; // per channel of the tile, padded to whole blocks of 16
            public Requantization* Rq;
        }

        interface IBlockWidth { static abstract bool Two { get; } }
        struct OneVector : IBlockWidth { public static bool Two => false; }
        struct TwoVectors : IBlockWidth { public static bool Two => true; }

        /// <summary>
        /// What <see cref="Block6"/> does with one vector of a block's channels on an x86 vector width: load the pairs, broadcast
        /// an input pair, multiply-add, and at the end requantise into the sink or flush into the 64-bit sums.
        /// </summary>
        interface IBlockIsa<TVec> where TVec : struct
        {
            /// <summary>Channels in one vector (one block): each lane sums one channel's pairs.</summary>
            static abstract int Lanes { get; }
            static abstract TVec Load(short* p);
            static abstract TVec Broadcast(int pair);
            static abstract TVec Mac(TVec c, TVec x, TVec w);
            /// <summary>Requantises lanes [0, cols) of <paramref name="v"/> (channels c0.. of pixel p) into the sink.</summary>
            static abstract void Emit(TVec v, BlockSink* sink, int p, int c0, int cols);
            /// <summary>Adds lanes [0, cols) of <paramref name="v"/>, widened and shifted, to the 64-bit sums at <paramref name="acc"/>.</summary>
            static abstract void Flush(TVec v, long* acc, int cols, int shift);
        }

        /// <summary>AVX-512: 16 channels per vector, vpmaddwd + vpaddd (.NET exposes no 512-bit vpdpwssd), requantised 16 at a time.</summary>
        struct Avx512Isa : IBlockIsa<Vector512<int>>
        {
            public static int Lanes => 16;
            [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<int> Load(short* p) => Vector512.Load((int*)p);
            [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<int> Broadcast(int pair) => Vector512.Create(pair);
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static Vector512<int> Mac(Vector512<int> c, Vector512<int> x, Vector512<int> w) => c + Avx512BW.MultiplyAddAdjacent(x.AsInt16(), w.AsInt16());

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static void Emit(Vector512<int> v, BlockSink* sink, int p, int c0, int cols)
            {
                short* y = sink->Output + (long)p * sink->OutStride + c0;
                var (lo, hi) = Vector512.Widen(v);
                var r = Requantize16(lo, hi, sink->Mul + c0, sink->Add + c0, sink->Rq);
                if (cols >= 16) r.Store(y);
                else for (int c = 0; c < cols; c++) y[c] = r.GetElement(c);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static void Flush(Vector512<int> v, long* acc, int cols, int shift)
            {
                if (cols < 16) { for (int c = 0; c < cols; c++) acc[c] += (long)v.GetElement(c) << shift; return; }
                var (lo, hi) = Vector512.Widen(v);
                Vector512.Store(Vector512.Load(acc) + (lo << shift), acc);
                Vector512.Store(Vector512.Load(acc + 8) + (hi << shift), acc + 8);
            }
        }

        /// <summary>AVX2: 8 channels per vector, vpmaddwd + vpaddd or AVX-VNNI vpdpwssd, requantised 8 at a time.</summary>
        struct Avx2Isa : IBlockIsa<Vector256<int>>
        {
            public static int Lanes => 8;
            [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Load(short* p) => Avx.LoadVector256((int*)p);
            [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Broadcast(int pair) => Vector256.Create(pair);
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static Vector256<int> Mac(Vector256<int> c, Vector256<int> x, Vector256<int> w) =>
                AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(c, x.AsInt16(), w.AsInt16()) : Avx2.Add(c, Avx2.MultiplyAddAdjacent(x.AsInt16(), w.AsInt16()));

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static void Emit(Vector256<int> v, BlockSink* sink, int p, int c0, int cols)
            {
                short* y = sink->Output + (long)p * sink->OutStride + c0;
                var r = Requantize8(Avx2.ConvertToVector256Int64(v.GetLower()), Avx2.ConvertToVector256Int64(v.GetUpper()), sink->Mul + c0, sink->Add + c0, sink->Rq);
                if (cols >= 8) r.Store(y);
                else for (int c = 0; c < cols; c++) y[c] = r.GetElement(c);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static void Flush(Vector256<int> v, long* acc, int cols, int shift)
            {
                if (cols < 8) { for (int c = 0; c < cols; c++) acc[c] += (long)v.GetElement(c) << shift; return; }
                Avx.Store(acc, Avx2.Add(Avx.LoadVector256(acc), Vector256.ShiftLeft(Avx2.ConvertToVector256Int64(v.GetLower()), shift)));
                Avx.Store(acc + 4, Avx2.Add(Avx.LoadVector256(acc + 4), Vector256.ShiftLeft(Avx2.ConvertToVector256Int64(v.GetUpper()), shift)));
            }
        }

        /// <summary>
        /// Pixels [at.P0, +at.Rows) x channels [at.C0, +at.Cols) (one or two blocks: <typeparamref name="TWidth"/>, a compile-time
        /// constant per instantiation, as the ISA <typeparamref name="TIsa"/> is) of <see cref="BlockedTile"/>, pairs [at.J0, at.J1)
        /// of every tap: added to the 64-bit sums acc[p][c] (at.Ld per pixel), or requantised into the <paramref name="sink"/>.
        /// </summary>
        static void Block6<TIsa, TVec, TWidth>(short** table, short* w, long blockShorts, ref BlockAt at, long* acc, BlockSink* sink)
            where TIsa : struct, IBlockIsa<TVec> where TVec : struct where TWidth : struct, IBlockWidth
        {
            int taps = at.Taps, j0 = at.J0, j1 = at.J1, pairShorts = 2 * TIsa.Lanes;
            TVec c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            TVec c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int tap = 0; tap < taps; tap++)
            {
                int* x0 = (int*)table[tap], x1 = (int*)table[taps + tap], x2 = (int*)table[2 * taps + tap];
                int* x3 = (int*)table[3 * taps + tap], x4 = (int*)table[4 * taps + tap], x5 = (int*)table[5 * taps + tap];
                short* wa = w + (long)tap * at.SegPairs * pairShorts, wb = wa + blockShorts;
                for (int j = j0; j < j1; j++)
                {
                    var v0 = TIsa.Load(wa + pairShorts * j);
                    var v1 = TWidth.Two ? TIsa.Load(wb + pairShorts * j) : default;
                    var x = TIsa.Broadcast(x0[j]);
                    c00 = TIsa.Mac(c00, x, v0); if (TWidth.Two) c01 = TIsa.Mac(c01, x, v1);
                    x = TIsa.Broadcast(x1[j]);
                    c10 = TIsa.Mac(c10, x, v0); if (TWidth.Two) c11 = TIsa.Mac(c11, x, v1);
                    x = TIsa.Broadcast(x2[j]);
                    c20 = TIsa.Mac(c20, x, v0); if (TWidth.Two) c21 = TIsa.Mac(c21, x, v1);
                    x = TIsa.Broadcast(x3[j]);
                    c30 = TIsa.Mac(c30, x, v0); if (TWidth.Two) c31 = TIsa.Mac(c31, x, v1);
                    x = TIsa.Broadcast(x4[j]);
                    c40 = TIsa.Mac(c40, x, v0); if (TWidth.Two) c41 = TIsa.Mac(c41, x, v1);
                    x = TIsa.Broadcast(x5[j]);
                    c50 = TIsa.Mac(c50, x, v0); if (TWidth.Two) c51 = TIsa.Mac(c51, x, v1);
                }
            }
            int rows = at.Rows, p0 = at.P0;
            Put<TIsa, TVec>(c00, c01, ref at, p0, acc, sink);
            if (rows > 1) Put<TIsa, TVec>(c10, c11, ref at, p0 + 1, acc, sink);
            if (rows > 2) Put<TIsa, TVec>(c20, c21, ref at, p0 + 2, acc, sink);
            if (rows > 3) Put<TIsa, TVec>(c30, c31, ref at, p0 + 3, acc, sink);
            if (rows > 4) Put<TIsa, TVec>(c40, c41, ref at, p0 + 4, acc, sink);
            if (rows > 5) Put<TIsa, TVec>(c50, c51, ref at, p0 + 5, acc, sink);
        }

        /// <summary>
        /// Pixel <paramref name="p"/>'s channels of <see cref="Block6"/> (the first vector, then the second where at.Cols reaches it):
        /// requantised into the <paramref name="sink"/> (the whole of K was one chunk, so these are the final sums), or flushed.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Put<TIsa, TVec>(TVec first, TVec second, ref BlockAt at, int p, long* acc, BlockSink* sink) where TIsa : struct, IBlockIsa<TVec> where TVec : struct
        {
            int lanes = TIsa.Lanes, c0 = at.C0, cols = at.Cols;
            if (sink != null)
            {
                TIsa.Emit(first, sink, p, c0, Math.Min(cols, lanes));
                if (cols > lanes) TIsa.Emit(second, sink, p, c0 + lanes, cols - lanes);
                return;
            }
            long* sums = acc + (long)p * at.Ld + c0;
            TIsa.Flush(first, sums, Math.Min(cols, lanes), at.Shift);
            if (cols > lanes) TIsa.Flush(second, sums + lanes, cols - lanes, at.Shift);
        }

        /// <summary>
        /// <see cref="Block6"/> on NEON for one block of 8 channels (at.Cols &lt;= 8). Per pair j and pixel q the broadcast input
        /// pair (x0, x1, x0, x1) meets the block's four 64-bit vectors of 2 channels' pairs (channels 0-1, 2-3, 4-5, 6-7) in
        /// four smlal, so each int32 lane sums one channel's even or odd products, one product per
        /// pair: 32 per <see cref="BlockedChunk"/>, half vpmaddwd's bound. addp pairs the lanes into the channels' sums.
        /// </summary>
        static void Block6Neon(short** table, short* w, ref BlockAt at, long* acc, BlockSink* sink)
        {
            int taps = at.Taps, j0 = at.J0, j1 = at.J1;
            Vector128<int> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector128<int> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            Vector128<int> a40 = default, a41 = default, a42 = default, a43 = default, a50 = default, a51 = default, a52 = default, a53 = default;
            for (int tap = 0; tap < taps; tap++)
            {
                int* x0 = (int*)table[tap], x1 = (int*)table[taps + tap], x2 = (int*)table[2 * taps + tap];
                int* x3 = (int*)table[3 * taps + tap], x4 = (int*)table[4 * taps + tap], x5 = (int*)table[5 * taps + tap];
                short* wj = w + (long)tap * at.SegPairs * 16 + 16 * j0;
                for (int j = j0; j < j1; j++, wj += 16)
                {
                    // four 64-bit weight loads (channels 0-1, 2-3, 4-5, 6-7) and ld1r broadcasts: smlal only, no register copies for smlal2
                    Vector64<short> v0 = AdvSimd.LoadVector64(wj), v1 = AdvSimd.LoadVector64(wj + 4), v2 = AdvSimd.LoadVector64(wj + 8), v3 = AdvSimd.LoadVector64(wj + 12);
                    var x = AdvSimd.LoadAndReplicateToVector64(x0 + j).AsInt16();
                    a00 = Mac(a00, x, v0); a01 = Mac(a01, x, v1); a02 = Mac(a02, x, v2); a03 = Mac(a03, x, v3);
                    x = AdvSimd.LoadAndReplicateToVector64(x1 + j).AsInt16();
                    a10 = Mac(a10, x, v0); a11 = Mac(a11, x, v1); a12 = Mac(a12, x, v2); a13 = Mac(a13, x, v3);
                    x = AdvSimd.LoadAndReplicateToVector64(x2 + j).AsInt16();
                    a20 = Mac(a20, x, v0); a21 = Mac(a21, x, v1); a22 = Mac(a22, x, v2); a23 = Mac(a23, x, v3);
                    x = AdvSimd.LoadAndReplicateToVector64(x3 + j).AsInt16();
                    a30 = Mac(a30, x, v0); a31 = Mac(a31, x, v1); a32 = Mac(a32, x, v2); a33 = Mac(a33, x, v3);
                    x = AdvSimd.LoadAndReplicateToVector64(x4 + j).AsInt16();
                    a40 = Mac(a40, x, v0); a41 = Mac(a41, x, v1); a42 = Mac(a42, x, v2); a43 = Mac(a43, x, v3);
                    x = AdvSimd.LoadAndReplicateToVector64(x5 + j).AsInt16();
                    a50 = Mac(a50, x, v0); a51 = Mac(a51, x, v1); a52 = Mac(a52, x, v2); a53 = Mac(a53, x, v3);
                }
            }
            int rows = at.Rows, p0 = at.P0;
            PutNeon(a00, a01, a02, a03, ref at, p0, acc, sink);
            if (rows > 1) PutNeon(a10, a11, a12, a13, ref at, p0 + 1, acc, sink);
            if (rows > 2) PutNeon(a20, a21, a22, a23, ref at, p0 + 2, acc, sink);
            if (rows > 3) PutNeon(a30, a31, a32, a33, ref at, p0 + 3, acc, sink);
            if (rows > 4) PutNeon(a40, a41, a42, a43, ref at, p0 + 4, acc, sink);
            if (rows > 5) PutNeon(a50, a51, a52, a53, ref at, p0 + 5, acc, sink);
        }

        /// <summary>smlal: the four int16 lanes of x times those of w, widened, added to the four int32 lanes of c.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<int> Mac(Vector128<int> c, Vector64<short> x, Vector64<short> w) => AdvSimd.MultiplyWideningLowerAndAdd(c, x, w);

        /// <summary>
        /// Pixel <paramref name="p"/>'s 8 (or at.Cols) channels of <see cref="Block6Neon"/>, from the even/odd lanes to channel sums
        /// (addp): requantised into the <paramref name="sink"/> (the whole of K was one chunk), or added, shifted, to the 64-bit sums.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void PutNeon(Vector128<int> q0, Vector128<int> q1, Vector128<int> q2, Vector128<int> q3, ref BlockAt at, int p, long* acc, BlockSink* sink)
        {
            Vector128<int> lo = AdvSimd.Arm64.AddPairwise(q0, q1), hi = AdvSimd.Arm64.AddPairwise(q2, q3); // channels 0-3, 4-7
            int c0 = at.C0, cols = at.Cols;
            if (sink != null)
            {
                short* y = sink->Output + (long)p * sink->OutStride + c0;
                var r = Vector128.Create(Requantize4Neon(lo, sink->Mul + c0, sink->Add + c0, sink->Rq), Requantize4Neon(hi, sink->Mul + c0 + 4, sink->Add + c0 + 4, sink->Rq));
                if (cols >= 8) r.Store(y);
                else for (int c = 0; c < cols; c++) y[c] = r.GetElement(c);
                return;
            }
            long* sums = acc + (long)p * at.Ld + c0;
            var shift = at.Shift;
            if (cols >= 8)
            {
                Vector128.Store(Vector128.Load(sums) + (Vector128.WidenLower(lo) << shift), sums);
                Vector128.Store(Vector128.Load(sums + 2) + (Vector128.WidenUpper(lo) << shift), sums + 2);
                Vector128.Store(Vector128.Load(sums + 4) + (Vector128.WidenLower(hi) << shift), sums + 4);
                Vector128.Store(Vector128.Load(sums + 6) + (Vector128.WidenUpper(hi) << shift), sums + 6);
                return;
            }
            for (int c = 0; c < cols; c++) sums[c] += (long)(c < 4 ? lo.GetElement(c) : hi.GetElement(c - 4)) << shift;
        }
    }
}
#endif
