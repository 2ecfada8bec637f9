using EdgeResNet.Common;
using System.Buffers.Binary;

namespace EdgeResNet.Flashing.SpiNor;

/// <summary>
/// The parts of JEDEC JESD216 (Serial Flash Discoverable Parameters) the driver needs: the 8-byte
/// SFDP header ("SFDP", revision, number of parameter headers), the 8-byte parameter headers
/// (ID, length in DWORDs, 24-bit table pointer) and DWORD 2 of the Basic Flash Parameter Table,
/// the density.
/// </summary>
public static class Sfdp
{
    /// <summary>"SFDP" read as a little-endian DWORD at SFDP address 0.</summary>
    public const uint Signature = 0x50444653;
    public const int HeaderSize = 8;
    public const int ParameterHeaderSize = 8;
    /// <summary>Parameter ID of the Basic Flash Parameter Table: LSB 0x00, MSB 0xFF.</summary>
    public const int BasicFlashParameterTableId = 0xFF00;

    /// <summary>
    /// Chip size in bytes from BFPT DWORD 2: bit 31 clear means bits 30:0 hold (size in bits − 1)
    /// (chips up to 2 Gbit); bit 31 set means the size is 2^N bits with N in bits 30:0.
    /// </summary>
    public static long DensityBytes(uint dword2)
    {
        if ((dword2 & 0x8000_0000u) == 0) return ((long)dword2 + 1) / 8;
        uint n = dword2 & 0x7FFF_FFFFu;
        if (n < 3 || n > 62) throw new DeviceException($"SFDP density DWORD 0x{dword2:X8} says 2^{n} bits, which is not a flash size");
        return 1L << (int)(n - 3);
    }

    /// <summary>Parameter header: table ID (MSB:LSB), length in DWORDs, and the table's SFDP address.</summary>
    public static (int Id, int LengthDwords, int Pointer) ParseParameterHeader(ReadOnlySpan<byte> header)
    {
        int id = header[7] << 8 | header[0];
        int pointer = header[4] | header[5] << 8 | header[6] << 16;
        return (id, header[3], pointer);
    }

    internal static uint Dword(ReadOnlySpan<byte> bytes, int index) => BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(index * 4, 4));
}
