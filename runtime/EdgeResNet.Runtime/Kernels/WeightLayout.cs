using System;
#if NET
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
#endif

namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// How a conv kernel wants a group of weights in RAM. Block 1 is rows, [channel][WeightStride]: the
    /// reference kernel reads that. Blocks of 8 (AVX2, NEON) or 16 (AVX-512) are what the SIMD kernels read:
    /// channels in blocks, and inside a block the K values in pairs, [k / 2][channel 0..block-1][k % 2], so one
    /// 256-bit load (AVX2; 512-bit on AVX-512; four 64-bit NEON loads) holds a block's channels x 2 consecutive values,
    /// the operand vpmaddwd (smlal) multiplies against a broadcast input pair. The channels a group lacks to fill its
    /// last block are zero.
    /// </summary>
    public static class WeightLayout
    {
        /// <summary>Where a piece of a group may start in a layout of blocks (<see cref="Unpack"/>): a multiple of this many channels, the octets the 10-bit unpack writes.</summary>
        public const int PieceChannels = 8;

        /// <summary>Values a group of <paramref name="channels"/> channels takes in this layout.</summary>
        public static int Shorts(int channels, int stride, int block) => (channels + block - 1) / block * block * stride;

        /// <summary>Where weight k of channel c (within the group) goes.</summary>
        public static int Index(int c, int k, int stride, int block) =>
            block == 1 ? c * stride + k : c / block * block * stride + (k >> 1) * 2 * block + c % block * 2 + (k & 1);

        /// <summary>
        /// Unpacks <paramref name="channels"/> rows of <paramref name="bits"/>-bit weights (<paramref name="rowBytes"/> each,
        /// <paramref name="reduce"/> values, zero to <paramref name="stride"/>) into channels <paramref name="firstChannel"/> on of
        /// <paramref name="dest"/> in this layout, with the padding channels of their last block zero (a group read in pieces:
        /// <paramref name="firstChannel"/> a multiple of <see cref="PieceChannels"/>, pieces in order, so a later piece overwrites that padding). Block 1 unpacks in place; another block unpacks each row into
        /// <paramref name="row"/> (<paramref name="stride"/> values) and puts it, except 10-bit weights on AVX2 and AVX-512, which go
        /// straight from the packed bytes into blocks of 8 or 16 (<see cref="Unpack10Blocks"/>).
        /// </summary>
        public static void Unpack(Span<byte> packed, int bits, int rowBytes, int reduce, int stride, int channels, int block, Span<short> row, Span<short> dest, int firstChannel = 0)
        {
            if (block > 1 && firstChannel % PieceChannels != 0) throw new ArgumentException($"a piece of a group in blocks starts at a multiple of {PieceChannels} channels, not {firstChannel}");
#if NET
            if ((block == 8 || block == 16) && bits == 10 && System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            {
                Unpack10Blocks(packed, rowBytes, reduce, stride, channels, block, dest, firstChannel);
                return;
            }
#endif
            for (int c = 0; c < channels; c++)
            {
                var unpacked = block == 1 ? dest.Slice((firstChannel + c) * stride, stride) : row.Slice(0, stride);
                Flash.BitPacking.Unpack(packed.Slice(c * rowBytes, rowBytes), bits, unpacked.Slice(0, reduce));
                unpacked.Slice(reduce).Clear();
                if (block > 1) PutRow(unpacked, firstChannel + c, stride, block, dest);
            }
            int end = firstChannel + channels;
            if (end % block == 0) return;
            row.Slice(0, stride).Clear();
            for (int c = end; c % block != 0; c++) PutRow(row, c, stride, block, dest);
        }

        /// <summary>Puts one channel's row of <paramref name="stride"/> values (even) in its place.</summary>
        public static void PutRow(Span<short> row, int c, int stride, int block, Span<short> dest)
        {
            if (block == 1) { row.Slice(0, stride).CopyTo(dest.Slice(c * stride, stride)); return; }
            int at = Index(c, 0, stride, block);
            for (int k = 0; k < stride; k += 2, at += 2 * block)
            {
                dest[at] = row[k];
                dest[at + 1] = row[k + 1];
            }
        }

#if NET
        /// <summary>
        /// 10-bit rows straight into blocks of 8 or 16 channels, 8 channels (an octet) at a time (<see cref="OctetSlab"/>): for
        /// each 8 rows x 16 values, each row's 20 bytes unpack into one vector of 8 pairs, and an 8 x 8 transpose of those pairs
        /// (as int32) gives the octet's part of 8 pair rows of its block. With AVX-512 VBMI a whole block of 16 takes 32 values
        /// of its 16 rows at a time (<see cref="Unpack32Of16Rows"/>), about twice as fast with the bytes in cache. Slabs the vector
        /// paths cannot take (past the reduce size, past the last channel, or too near the end of the bytes) go value by value;
        /// an octet wholly past the last channel is zeroed by vectors.
        /// </summary>
        static unsafe void Unpack10Blocks(Span<byte> packed, int rowBytes, int reduce, int stride, int channels, int block, Span<short> dest, int firstChannel)
        {
            // octet o of the piece is octet first + o of the group: its block, and its half of a block of 16
            int perBlock = block / 8, first = firstChannel / 8, octets = (firstChannel + channels + block - 1) / block * perBlock - first;
            int slabs = stride / 16;
            bool wide = block == 16 && Avx512Vbmi.IsSupported;
            fixed (byte* src = packed)
            fixed (short* d = dest)
            {
                // The piece comes cold from flash (memory on a host): one pass of prefetches over its bytes in order reads them at
                // the memory's streaming rate, where the 8 or 16 row streams of the unpack alone waited on each line in turn.
                for (long i = 0; i < (long)channels * rowBytes; i += 64) Sse.Prefetch0(src + i);
                for (int o = 0; o < octets; o++)
                {
                    int s = 0;
                    // a whole block of 16 channels: 32 values of its 16 rows at a time (Unpack32Of16Rows), where the loads stay in the bytes
                    if (wide && (first + o) % 2 == 0 && channels - o * 8 >= 16)
                    {
                        short* blockAt = d + (long)((first + o) / 2) * 16 * stride;
                        for (; 2 * s + 1 < slabs && (s + 1) * 32 <= reduce && (long)(o * 8 + 15) * rowBytes + s * 40 + 64 <= (long)channels * rowBytes; s++)
                            Unpack32Of16Rows(src + (long)o * 8 * rowBytes + s * 40, rowBytes, blockAt + s * 16 * 32);
                        for (int t = 2 * s; t < slabs; t++)
                        {
                            OctetSlab(packed, src, rowBytes, reduce, stride, channels, block, d, first, o, t);
                            OctetSlab(packed, src, rowBytes, reduce, stride, channels, block, d, first, o + 1, t);
                        }
                        o++;
                        continue;
                    }
                    for (; s < slabs; s++) OctetSlab(packed, src, rowBytes, reduce, stride, channels, block, d, first, o, s);
                }
            }
        }

        /// <summary>Values [16 s, 16 s + 16) of octet <paramref name="o"/> of the piece into its block (<see cref="Unpack10Blocks"/>).</summary>
        static unsafe void OctetSlab(Span<byte> packed, byte* src, int rowBytes, int reduce, int stride, int channels, int block, short* d, int first, int o, int s)
        {
            int perBlock = block / 8, pairShorts = 2 * block, last = Math.Max(0, Math.Min(8, channels - o * 8));
            short* outAt = d + (long)((first + o) / perBlock) * block * stride + s * 8 * pairShorts + (first + o) % perBlock * 16;
            if (last == 0)
            {
                // an octet past the piece's channels: the padding of its block (a later piece of the group overwrites it)
                for (int j = 0; j < 8; j++) Vector256<short>.Zero.Store(outAt + j * pairShorts);
                return;
            }
            if (last < 8 || (s + 1) * 16 > reduce || (long)(o * 8 + 7) * rowBytes + s * 20 + 26 > (long)channels * rowBytes)
            {
                for (int c = 0; c < 8; c++)
                    for (int k = s * 16; k < s * 16 + 16; k++)
                        outAt[(k - s * 16) / 2 * pairShorts + c * 2 + (k & 1)] =
                            c < last && k < reduce ? Flash.BitPacking.Get(packed.Slice((o * 8 + c) * rowBytes, rowBytes), 10, k) : (short)0;
                return;
            }
            byte* at = src + (long)o * 8 * rowBytes + s * 20;
            Transpose8x8Store(Flash.BitPacking.Load16Of10(at).AsInt32(), Flash.BitPacking.Load16Of10(at + rowBytes).AsInt32(),
                Flash.BitPacking.Load16Of10(at + 2 * rowBytes).AsInt32(), Flash.BitPacking.Load16Of10(at + 3 * rowBytes).AsInt32(),
                Flash.BitPacking.Load16Of10(at + 4 * rowBytes).AsInt32(), Flash.BitPacking.Load16Of10(at + 5 * rowBytes).AsInt32(),
                Flash.BitPacking.Load16Of10(at + 6 * rowBytes).AsInt32(), Flash.BitPacking.Load16Of10(at + 7 * rowBytes).AsInt32(), outAt, pairShorts);
        }

        // Value i of 32 (10 bits at bit 10 i): its two bytes into int16 lane i (vpermb), shifted left so its top bit is bit 15.
        static readonly Vector512<byte> Bytes32Of10 = Vector512.Create(BytePairs());
        static readonly Vector512<ushort> Align32Of10 = Vector512.Create(Shifts());

        static byte[] BytePairs()
        {
            var control = new byte[64];
            for (int i = 0; i < 32; i++) { control[2 * i] = (byte)(10 * i >> 3); control[2 * i + 1] = (byte)((10 * i >> 3) + 1); }
            return control;
        }

        static ushort[] Shifts()
        {
            var shifts = new ushort[32];
            for (int i = 0; i < 32; i++) shifts[i] = (ushort)(6 - (10 * i & 7));
            return shifts;
        }

        // Stage b of the 16 x 16 transpose of int32 (pairs of values) swaps bit b of the row with bit b of the column: for
        // rows r (bit b clear) and r | 2^b, element q of the new row r is q's own (bit b clear) or the partner's q - 2^b, and of
        // the new partner the row's q + 2^b or its own (vpermt2d, index 16 and up taking the second row).
        static readonly Vector512<int> Low0 = SwapIndex(0, true), Low1 = SwapIndex(1, true), Low2 = SwapIndex(2, true), Low3 = SwapIndex(3, true);
        static readonly Vector512<int> High0 = SwapIndex(0, false), High1 = SwapIndex(1, false), High2 = SwapIndex(2, false), High3 = SwapIndex(3, false);

        static Vector512<int> SwapIndex(int b, bool low)
        {
            var index = new int[16];
            for (int q = 0; q < 16; q++)
            {
                bool set = (q >> b & 1) != 0;
                index[q] = low ? (set ? 16 + (q ^ 1 << b) : q) : (set ? 16 + q : q | 1 << b);
            }
            return Vector512.Create(index);
        }

        /// <summary>The first 32 values of a row at <paramref name="row"/> (64 bytes read) as 16 int32 pairs.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        static unsafe Vector512<int> Load32Of10(byte* row) =>
            Avx512BW.ShiftRightArithmetic(Avx512BW.ShiftLeftLogicalVariable(Avx512Vbmi.PermuteVar64x8(Vector512.Load(row), Bytes32Of10).AsUInt16(), Align32Of10).AsInt16(), 6).AsInt32();

        /// <summary>
        /// Values [0, 32) of 16 rows of 10-bit weights (<paramref name="rowBytes"/> apart, each read as 64 bytes from
        /// <paramref name="rows"/>) into 16 pair rows of a block of 16 channels at <paramref name="output"/> (32 values each):
        /// each row unpacks with one vpermb and two shifts, and a 16 x 16 transpose of its int32 pairs (4 x 16 vpermt2d) gives
        /// the pair rows. AVX-512 VBMI; written out so the 16 rows stay in registers.
        /// </summary>
        static unsafe void Unpack32Of16Rows(byte* rows, int rowBytes, short* output)
        {
            var r0 = Load32Of10(rows);
            var r1 = Load32Of10(rows + 1L * rowBytes);
            var r2 = Load32Of10(rows + 2L * rowBytes);
            var r3 = Load32Of10(rows + 3L * rowBytes);
            var r4 = Load32Of10(rows + 4L * rowBytes);
            var r5 = Load32Of10(rows + 5L * rowBytes);
            var r6 = Load32Of10(rows + 6L * rowBytes);
            var r7 = Load32Of10(rows + 7L * rowBytes);
            var r8 = Load32Of10(rows + 8L * rowBytes);
            var r9 = Load32Of10(rows + 9L * rowBytes);
            var r10 = Load32Of10(rows + 10L * rowBytes);
            var r11 = Load32Of10(rows + 11L * rowBytes);
            var r12 = Load32Of10(rows + 12L * rowBytes);
            var r13 = Load32Of10(rows + 13L * rowBytes);
            var r14 = Load32Of10(rows + 14L * rowBytes);
            var r15 = Load32Of10(rows + 15L * rowBytes);
            Vector512<int> t;
            t = r0; r0 = Avx512F.PermuteVar16x32x2(t, Low0, r1); r1 = Avx512F.PermuteVar16x32x2(t, High0, r1);
            t = r2; r2 = Avx512F.PermuteVar16x32x2(t, Low0, r3); r3 = Avx512F.PermuteVar16x32x2(t, High0, r3);
            t = r4; r4 = Avx512F.PermuteVar16x32x2(t, Low0, r5); r5 = Avx512F.PermuteVar16x32x2(t, High0, r5);
            t = r6; r6 = Avx512F.PermuteVar16x32x2(t, Low0, r7); r7 = Avx512F.PermuteVar16x32x2(t, High0, r7);
            t = r8; r8 = Avx512F.PermuteVar16x32x2(t, Low0, r9); r9 = Avx512F.PermuteVar16x32x2(t, High0, r9);
            t = r10; r10 = Avx512F.PermuteVar16x32x2(t, Low0, r11); r11 = Avx512F.PermuteVar16x32x2(t, High0, r11);
            t = r12; r12 = Avx512F.PermuteVar16x32x2(t, Low0, r13); r13 = Avx512F.PermuteVar16x32x2(t, High0, r13);
            t = r14; r14 = Avx512F.PermuteVar16x32x2(t, Low0, r15); r15 = Avx512F.PermuteVar16x32x2(t, High0, r15);
            t = r0; r0 = Avx512F.PermuteVar16x32x2(t, Low1, r2); r2 = Avx512F.PermuteVar16x32x2(t, High1, r2);
            t = r1; r1 = Avx512F.PermuteVar16x32x2(t, Low1, r3); r3 = Avx512F.PermuteVar16x32x2(t, High1, r3);
            t = r4; r4 = Avx512F.PermuteVar16x32x2(t, Low1, r6); r6 = Avx512F.PermuteVar16x32x2(t, High1, r6);
            t = r5; r5 = Avx512F.PermuteVar16x32x2(t, Low1, r7); r7 = Avx512F.PermuteVar16x32x2(t, High1, r7);
            t = r8; r8 = Avx512F.PermuteVar16x32x2(t, Low1, r10); r10 = Avx512F.PermuteVar16x32x2(t, High1, r10);
            t = r9; r9 = Avx512F.PermuteVar16x32x2(t, Low1, r11); r11 = Avx512F.PermuteVar16x32x2(t, High1, r11);
            t = r12; r12 = Avx512F.PermuteVar16x32x2(t, Low1, r14); r14 = Avx512F.PermuteVar16x32x2(t, High1, r14);
            t = r13; r13 = Avx512F.PermuteVar16x32x2(t, Low1, r15); r15 = Avx512F.PermuteVar16x32x2(t, High1, r15);
            t = r0; r0 = Avx512F.PermuteVar16x32x2(t, Low2, r4); r4 = Avx512F.PermuteVar16x32x2(t, High2, r4);
            t = r1; r1 = Avx512F.PermuteVar16x32x2(t, Low2, r5); r5 = Avx512F.PermuteVar16x32x2(t, High2, r5);
            t = r2; r2 = Avx512F.PermuteVar16x32x2(t, Low2, r6); r6 = Avx512F.PermuteVar16x32x2(t, High2, r6);
            t = r3; r3 = Avx512F.PermuteVar16x32x2(t, Low2, r7); r7 = Avx512F.PermuteVar16x32x2(t, High2, r7);
            t = r8; r8 = Avx512F.PermuteVar16x32x2(t, Low2, r12); r12 = Avx512F.PermuteVar16x32x2(t, High2, r12);
            t = r9; r9 = Avx512F.PermuteVar16x32x2(t, Low2, r13); r13 = Avx512F.PermuteVar16x32x2(t, High2, r13);
            t = r10; r10 = Avx512F.PermuteVar16x32x2(t, Low2, r14); r14 = Avx512F.PermuteVar16x32x2(t, High2, r14);
            t = r11; r11 = Avx512F.PermuteVar16x32x2(t, Low2, r15); r15 = Avx512F.PermuteVar16x32x2(t, High2, r15);
            t = r0; r0 = Avx512F.PermuteVar16x32x2(t, Low3, r8); r8 = Avx512F.PermuteVar16x32x2(t, High3, r8);
            t = r1; r1 = Avx512F.PermuteVar16x32x2(t, Low3, r9); r9 = Avx512F.PermuteVar16x32x2(t, High3, r9);
            t = r2; r2 = Avx512F.PermuteVar16x32x2(t, Low3, r10); r10 = Avx512F.PermuteVar16x32x2(t, High3, r10);
            t = r3; r3 = Avx512F.PermuteVar16x32x2(t, Low3, r11); r11 = Avx512F.PermuteVar16x32x2(t, High3, r11);
            t = r4; r4 = Avx512F.PermuteVar16x32x2(t, Low3, r12); r12 = Avx512F.PermuteVar16x32x2(t, High3, r12);
            t = r5; r5 = Avx512F.PermuteVar16x32x2(t, Low3, r13); r13 = Avx512F.PermuteVar16x32x2(t, High3, r13);
            t = r6; r6 = Avx512F.PermuteVar16x32x2(t, Low3, r14); r14 = Avx512F.PermuteVar16x32x2(t, High3, r14);
            t = r7; r7 = Avx512F.PermuteVar16x32x2(t, Low3, r15); r15 = Avx512F.PermuteVar16x32x2(t, High3, r15);
            r0.AsInt16().Store(output + 0);
            r1.AsInt16().Store(output + 32);
            r2.AsInt16().Store(output + 64);
            r3.AsInt16().Store(output + 96);
            r4.AsInt16().Store(output + 128);
            r5.AsInt16().Store(output + 160);
            r6.AsInt16().Store(output + 192);
            r7.AsInt16().Store(output + 224);
            r8.AsInt16().Store(output + 256);
            r9.AsInt16().Store(output + 288);
            r10.AsInt16().Store(output + 320);
            r11.AsInt16().Store(output + 352);
            r12.AsInt16().Store(output + 384);
            r13.AsInt16().Store(output + 416);
            r14.AsInt16().Store(output + 448);
            r15.AsInt16().Store(output + 480);
        }

        /// <summary>Stores the 8 x 8 transpose of r0..r7 (int32 pairs): vector j of the output is element j of each r, at output + j <paramref name="pairShorts"/>.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        static unsafe void Transpose8x8Store(Vector256<int> r0, Vector256<int> r1, Vector256<int> r2, Vector256<int> r3,
            Vector256<int> r4, Vector256<int> r5, Vector256<int> r6, Vector256<int> r7, short* output, int pairShorts)
        {
            var t0 = Avx2.UnpackLow(r0, r1); var t1 = Avx2.UnpackHigh(r0, r1);
            var t2 = Avx2.UnpackLow(r2, r3); var t3 = Avx2.UnpackHigh(r2, r3);
            var t4 = Avx2.UnpackLow(r4, r5); var t5 = Avx2.UnpackHigh(r4, r5);
            var t6 = Avx2.UnpackLow(r6, r7); var t7 = Avx2.UnpackHigh(r6, r7);
            var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32(); var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
            var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32(); var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
            var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32(); var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
            var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32(); var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
            Avx2.Permute2x128(u0, u4, 0x20).AsInt16().Store(output);
            Avx2.Permute2x128(u1, u5, 0x20).AsInt16().Store(output + 1 * pairShorts);
            Avx2.Permute2x128(u2, u6, 0x20).AsInt16().Store(output + 2 * pairShorts);
            Avx2.Permute2x128(u3, u7, 0x20).AsInt16().Store(output + 3 * pairShorts);
            Avx2.Permute2x128(u0, u4, 0x31).AsInt16().Store(output + 4 * pairShorts);
            Avx2.Permute2x128(u1, u5, 0x31).AsInt16().Store(output + 5 * pairShorts);
            Avx2.Permute2x128(u2, u6, 0x31).AsInt16().Store(output + 6 * pairShorts);
            Avx2.Permute2x128(u3, u7, 0x31).AsInt16().Store(output + 7 * pairShorts);
        }
#endif

        /// <summary>A whole layer's rows in this layout (host tools, tests and benchmarks; the engine unpacks straight into it).</summary>
        public static short[] FromRows(short[] rows, int channels, int stride, int block)
        {
            var dest = new short[Shorts(channels, stride, block)];
            for (int c = 0; c < channels; c++) PutRow(new Span<short>(rows, c * stride, stride), c, stride, block, dest);
            return dest;
        }
    }
}
