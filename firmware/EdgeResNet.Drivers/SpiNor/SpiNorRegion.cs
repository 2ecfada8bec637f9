using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Drivers.SpiNor;

/// <summary>
/// A fixed range of an <see cref="SpiNorFlash"/> (an image slot) with offsets relative to its start:
/// the runtime opens a flash image in it as if it were the whole flash.
/// </summary>
public sealed class SpiNorRegion : IFlash
{
    internal SpiNorRegion(SpiNorFlash flash, long offset, long length)
    {
        Flash = flash;
        Offset = offset;
        Length = length;
    }

    public SpiNorFlash Flash { get; }
    /// <summary>Where the region starts on the chip.</summary>
    public long Offset { get; }
    public long Length { get; }

    public void Read(long offset, Span<byte> destination) => Flash.Read(Map(offset, destination.Length, "read"), destination);
    public void Program(long offset, ReadOnlySpan<byte> data) => Flash.Program(Map(offset, data.Length, "program"), data);
    /// <summary>Erases whole 4 KiB sectors; <see cref="Offset"/> plus <paramref name="offset"/> must be sector aligned.</summary>
    public void Erase(long offset, long length) => Flash.Erase(Map(offset, length, "erase"), length);

    long Map(long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{what} of {count} bytes at 0x{offset:X} is outside the {Length}-byte region at 0x{Offset:X}");
        return Offset + offset;
    }
}
