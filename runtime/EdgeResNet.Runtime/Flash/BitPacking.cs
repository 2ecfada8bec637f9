using System;
#if NET
using System.Runtime.Intrinsics;
#endif

namespace EdgeResNet.Runtime.Flash
{
    /// <summary>
    /// N-bit two's complement values (N = 2..16) packed as a little-endian bit stream: value i
    /// occupies bits [i*N, (i+1)*N). 10-bit weights take 4 values in 5 bytes.
    /// </summary>
    public static class BitPacking
    {
        public static int PackedBytes(int count, int bits) => (int)(((long)count * bits + 7) / 8);

        public static void Pack(Span<short> values, int bits, Span<byte> dest)
        {
            CheckBits(bits);
            dest.Slice(0, PackedBytes(values.Length, bits)).Clear();
            int mask = (1 << bits) - 1;
            for (int i = 0; i < values.Length; i++)
            {
                long p = (long)i * bits;
                int v = (values[i] & mask) << (int)(p & 7);
                int b = (int)(p >> 3);
                for (int k = 0; v != 0; k++, v >>= 8) dest[b + k] |= (byte)v;
            }
        }

        public static void Unpack(Span<byte> src, int bits, Span<short> dest)
        {
            CheckBits(bits);
            int i = 0;
#if NET
            if (bits == 10) i = Unpack10Avx2(src, dest);
#endif
            if (bits == 10)
            {
                // The default width, on the hot path: 4 values from each 5 bytes.
                for (int b = i / 4 * 5; i + 4 <= dest.Length; i += 4, b += 5)
                {
                    long v = src[b] | (long)src[b + 1] << 8 | (long)src[b + 2] << 16 | (long)src[b + 3] << 24 | (long)src[b + 4] << 32;
                    dest[i] = (short)((int)v << 22 >> 22);
                    dest[i + 1] = (short)((int)(v >> 10) << 22 >> 22);
                    dest[i + 2] = (short)((int)(v >> 20) << 22 >> 22);
                    dest[i + 3] = (short)((int)(v >> 30) << 22 >> 22);
                }
            }
            for (; i < dest.Length; i++) dest[i] = Get(src, bits, i);
        }

        /// <summary>Value <paramref name="i"/> of a packed stream.</summary>
        public static short Get(Span<byte> src, int bits, int i)
        {
            int shift = 32 - bits;
            long p = (long)i * bits;
            int b = (int)(p >> 3);
            int window = src[b];
            if (b + 1 < src.Length) window |= src[b + 1] << 8;
            if (b + 2 < src.Length) window |= src[b + 2] << 16;
            return (short)((window >> (int)(p & 7)) << shift >> shift);
        }

#if NET
        // Per 128-bit lane, 8 ten-bit values from 10 bytes: bytes (b, b+1) of value j go to int16 element j,
        // a multiply left-aligns the value's bits (offset 0, 2, 4 or 6) and an arithmetic shift sign-extends it.
        static readonly System.Runtime.Intrinsics.Vector256<byte> Pairs10 = System.Runtime.Intrinsics.Vector256.Create(
            (byte)0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 6, 7, 7, 8, 8, 9, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 6, 7, 7, 8, 8, 9);
        static readonly System.Runtime.Intrinsics.Vector256<short> Align10 = System.Runtime.Intrinsics.Vector256.Create(
            (short)64, 16, 4, 1, 64, 16, 4, 1, 64, 16, 4, 1, 64, 16, 4, 1);

        /// <summary>16 values per step with AVX2; returns how many values it unpacked (a multiple of 16).</summary>
        static unsafe int Unpack10Avx2(Span<byte> src, Span<short> dest)
        {
            if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return 0;
            int i = 0;
            fixed (byte* s = src)
            fixed (short* d = dest)
                // each step reads 16 bytes at b and 16 at b + 10, so it needs b + 26 <= src.Length
                for (int b = 0; i + 16 <= dest.Length && b + 26 <= src.Length; i += 16, b += 20)
                    Load16Of10(s + b).Store(d + i);
            return i;
        }

        /// <summary>16 ten-bit values from the 20 bytes at <paramref name="s"/> (reads 26 bytes); AVX2 only.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        internal static unsafe System.Runtime.Intrinsics.Vector256<short> Load16Of10(byte* s)
        {
            var bytes = System.Runtime.Intrinsics.Vector256.Create(System.Runtime.Intrinsics.Vector128.Load(s), System.Runtime.Intrinsics.Vector128.Load(s + 10));
            var pairs = System.Runtime.Intrinsics.X86.Avx2.Shuffle(bytes, Pairs10).AsInt16();
            return System.Runtime.Intrinsics.Vector256.ShiftRightArithmetic(pairs * Align10, 6);
        }
#endif

        static void CheckBits(int bits)
        {
            if (bits < 2 || bits > 16) throw new ArgumentOutOfRangeException(nameof(bits), "bit width must be 2..16, not " + bits);
        }
    }
}
