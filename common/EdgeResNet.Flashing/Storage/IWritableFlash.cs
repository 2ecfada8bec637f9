using EdgeResNet.Common;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.Storage;

/// <summary>
/// Flash the tools and the loader can write, with NOR semantics: <see cref="Erase"/> sets whole
/// sectors to 0xFF, <see cref="Program"/> can only clear bits of erased bytes.
/// </summary>
public interface IWritableFlash : IFlash
{
    /// <summary>The erase granularity in bytes (4096 on SPI NOR).</summary>
    int SectorSize { get; }
    /// <summary>Erases [offset, offset + length), both multiples of <see cref="SectorSize"/>.</summary>
    void Erase(long offset, long length);
    void Program(long offset, ReadOnlySpan<byte> data);
    /// <summary>Makes what was written durable (NOR is, once its busy bit clears; a file needs an fsync).</summary>
    void Sync() { }
}

/// <summary>
/// An existing file standing in for flash (a board whose images live on an SD card or eMMC):
/// erase writes 0xFF, program writes the bytes; <see cref="Sync"/> is an fsync.
/// </summary>
public sealed class FileStorage : IWritableFlash, IDisposable
{
    readonly FileStream _file;

    public FileStorage(string path)
    {
        const string Create = "create one erased, the size of two images, e.g. `head -c 64M /dev/zero | tr '\\0' '\\377' > PATH`";
        if (!File.Exists(path)) throw new DeviceException($"storage file not found: {path}; {Create}");
        _file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        if (_file.Length == 0 || _file.Length % SectorSize != 0)
        {
            _file.Dispose();
            throw new DeviceException($"storage file {path} holds {new FileInfo(path).Length:N0} bytes, not a positive multiple of {SectorSize}; {Create}");
        }
    }

    public long Length => _file.Length;
    public int SectorSize => NorGeometry.SectorSize;

    public void Read(long offset, Span<byte> destination)
    {
        Check(offset, destination.Length);
        _file.Position = offset;
        _file.ReadExactly(destination);
    }

    public void Erase(long offset, long length)
    {
        Check(offset, length);
        if (offset % SectorSize != 0 || length % SectorSize != 0) throw new ArgumentException($"erase of {length} bytes at {offset} is not sector aligned");
        Span<byte> erased = stackalloc byte[NorGeometry.SectorSize];
        erased.Fill(0xFF);
        _file.Position = offset;
        for (long done = 0; done < length; done += erased.Length) _file.Write(erased);
    }

    public void Program(long offset, ReadOnlySpan<byte> data)
    {
        Check(offset, data.Length);
        _file.Position = offset;
        _file.Write(data);
    }

    public void Sync() => _file.Flush(true);

    void Check(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > _file.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{length} bytes at {offset} are outside the {_file.Length}-byte storage");
    }

    public void Dispose() => _file.Dispose();
}
