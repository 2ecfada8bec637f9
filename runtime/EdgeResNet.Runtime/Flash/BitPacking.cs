using System;

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
            int shift = 32 - bits, i = 0;
            if (bits == 10)
            {
                // The default width, on the hot path: 4 values from each 5 bytes.
                for (int b = 0; i + 4 <= dest.Length; i += 4, b += 5)
                {
                    long v = src[b] | (long)src[b + 1] << 8 | (long)src[b + 2] << 16 | (long)src[b + 3] << 24 | (long)src[b + 4] << 32;
                    dest[i] = (short)((int)v << 22 >> 22);
                    dest[i + 1] = (short)((int)(v >> 10) << 22 >> 22);
                    dest[i + 2] = (short)((int)(v >> 20) << 22 >> 22);
                    dest[i + 3] = (short)((int)(v >> 30) << 22 >> 22);
                }
            }
            for (; i < dest.Length; i++)
            {
                long p = (long)i * bits;
                int b = (int)(p >> 3);
                int window = src[b];
                if (b + 1 < src.Length) window |= src[b + 1] << 8;
                if (b + 2 < src.Length) window |= src[b + 2] << 16;
                dest[i] = (short)((window >> (int)(p & 7)) << shift >> shift);
            }
        }

        static void CheckBits(int bits)
        {
            if (bits < 2 || bits > 16) throw new ArgumentOutOfRangeException(nameof(bits), bits, "bit width must be 2..16");
        }
    }
}
