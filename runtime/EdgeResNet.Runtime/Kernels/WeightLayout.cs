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
        /// <paramref name="row"/> (<paramref name="stride"/> values) and puts it, except 10-bit weights on AVX2, which go
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
        /// 10-bit rows straight into blocks of 8 or 16 channels, 8 channels (an octet) at a time: for each 8 rows x 16 values,
        /// each row's 20 bytes unpack into one vector of 8 pairs, and an 8 x 8 transpose of those pairs (as int32) gives the
        /// octet's part of 8 pair rows of its block. Slabs the vector path cannot take (past the reduce size, past the last
        /// channel, or too near the end of the bytes) go value by value; an octet wholly past the last channel is zeroed by vectors.
        /// </summary>
        static unsafe void Unpack10Blocks(Span<byte> packed, int rowBytes, int reduce, int stride, int channels, int block, Span<short> dest, int firstChannel)
        {
            // octet o of the piece is octet first + o of the group: its block, and its half of a block of 16
            int perBlock = block / 8, first = firstChannel / 8, octets = (firstChannel + channels + block - 1) / block * perBlock - first;
            int slabs = stride / 16, pairShorts = 2 * block;
            long total = (long)channels * rowBytes;
            fixed (byte* src = packed)
            fixed (short* d = dest)
                for (int o = 0; o < octets; o++)
                {
                    int last = Math.Max(0, Math.Min(8, channels - o * 8));
                    byte* s0 = src + (long)o * 8 * rowBytes;
                    for (int s = 0; s < slabs; s++)
                    {
                        short* outAt = d + (long)((first + o) / perBlock) * block * stride + s * 8 * pairShorts + (first + o) % perBlock * 16;
                        bool vector = last == 8 && (s + 1) * 16 <= reduce && (long)(o * 8 + 7) * rowBytes + s * 20 + 26 <= total;
                        if (last == 0)
                        {
                            // an octet past the piece's channels: the padding of its block (a later piece of the group overwrites it)
                            for (int j = 0; j < 8; j++) Vector256<short>.Zero.Store(outAt + j * pairShorts);
                            continue;
                        }
                        if (!vector)
                        {
                            for (int c = 0; c < 8; c++)
                                for (int k = s * 16; k < s * 16 + 16; k++)
                                    outAt[(k - s * 16) / 2 * pairShorts + c * 2 + (k & 1)] =
                                        c < last && k < reduce ? Flash.BitPacking.Get(packed.Slice((o * 8 + c) * rowBytes, rowBytes), 10, k) : (short)0;
                            continue;
                        }
                        byte* at = s0 + s * 20;
                        Transpose8x8Store(Flash.BitPacking.Load16Of10(at).AsInt32(), Flash.BitPacking.Load16Of10(at + rowBytes).AsInt32(),
                            Flash.BitPacking.Load16Of10(at + 2 * rowBytes).AsInt32(), Flash.BitPacking.Load16Of10(at + 3 * rowBytes).AsInt32(),
                            Flash.BitPacking.Load16Of10(at + 4 * rowBytes).AsInt32(), Flash.BitPacking.Load16Of10(at + 5 * rowBytes).AsInt32(),
                            Flash.BitPacking.Load16Of10(at + 6 * rowBytes).AsInt32(), Flash.BitPacking.Load16Of10(at + 7 * rowBytes).AsInt32(), outAt, pairShorts);
                    }
                }
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
