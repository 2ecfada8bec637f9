using System;

namespace EdgeResNet.Runtime.Flash
{
    /// <summary>CRC-32 (IEEE 802.3, reflected, as zlib and System.IO.Hashing.Crc32), incremental.</summary>
    public static class Crc32
    {
        static readonly uint[] Table = MakeTable();

        static uint[] MakeTable()
        {
            var t = new uint[256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
            return t;
        }

        /// <summary>Continue a CRC: start with <c>Append(0, data)</c>, feed more with the returned value.</summary>
        public static uint Append(uint crc, Span<byte> data)
        {
            uint c = ~crc;
            for (int i = 0; i < data.Length; i++) c = Table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
            return ~c;
        }
    }
}
