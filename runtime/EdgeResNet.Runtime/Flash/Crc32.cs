using System;
#if !NANOFRAMEWORK
using System.Runtime.InteropServices;
#endif

namespace EdgeResNet.Runtime.Flash
{
    /// <summary>
    /// CRC-32 (IEEE 802.3, reflected, as zlib and System.IO.Hashing.Crc32), incremental.
    /// Slicing-by-8: eight table lookups per 8 bytes instead of one per byte, because verifying a
    /// 32 MB image (at load, in the loader) is CRC-bound on small cores.
    /// </summary>
    public static class Crc32
    {
        static readonly uint[] Tables = MakeTables();

        static uint[] MakeTables()
        {
            var t = new uint[8 * 256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
            // Table k advances a byte's CRC by k more zero bytes.
            for (int k = 1; k < 8; k++)
                for (int i = 0; i < 256; i++)
                    t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[t[(k - 1) * 256 + i] & 0xFF];
            return t;
        }

        /// <summary>CRC-32 of <paramref name="length"/> bytes of <paramref name="flash"/> from <paramref name="offset"/>, read through <paramref name="buffer"/>.</summary>
        public static uint Of(IFlash flash, long offset, long length, byte[] buffer)
        {
            uint crc = 0;
            for (long done = 0; done < length;)
            {
                var span = new Span<byte>(buffer, 0, (int)Math.Min(buffer.Length, length - done));
                flash.Read(offset + done, span);
                crc = Append(crc, span);
                done += span.Length;
            }
            return crc;
        }

        /// <summary>Continue a CRC: start with <c>Append(0, data)</c>, feed more with the returned value.</summary>
        public static uint Append(uint crc, ReadOnlySpan<byte> readOnly)
        {
#if NANOFRAMEWORK
            var data = readOnly;
#else
            // Read through a Span view: Mono 6.8 lacks the ref-readonly ReadOnlySpan indexer that netstandard2.1 compiles against.
            Span<byte> data = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(readOnly), readOnly.Length);
#endif
            uint[] t = Tables;
            uint c = ~crc;
            int i = 0;
            for (; i + 8 <= data.Length; i += 8)
            {
                uint lo = c ^ (uint)(data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24);
                uint hi = (uint)(data[i + 4] | data[i + 5] << 8 | data[i + 6] << 16 | data[i + 7] << 24);
                c = t[7 * 256 + (lo & 0xFF)] ^ t[6 * 256 + ((lo >> 8) & 0xFF)] ^ t[5 * 256 + ((lo >> 16) & 0xFF)] ^ t[4 * 256 + (lo >> 24)]
                  ^ t[3 * 256 + (hi & 0xFF)] ^ t[2 * 256 + ((hi >> 8) & 0xFF)] ^ t[256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
            }
            for (; i < data.Length; i++) c = t[(c ^ data[i]) & 0xFF] ^ (c >> 8);
            return ~c;
        }
    }
}
