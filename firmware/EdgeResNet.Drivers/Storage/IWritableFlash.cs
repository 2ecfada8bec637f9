using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Drivers.Storage;

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
}

/// <summary>
/// A file of fixed size standing in for flash (a board whose image lives on an SD card or eMMC,
/// or a host test): erase writes 0xFF, program writes the bytes. Created full of 0xFF if missing.
/// </summary>
public sealed class FileStorage : IWritableFlash, IDisposable
{
    readonly FileStream _file;

    public FileStorage(string path, long capacity)
    {
        if (capacity <= 0 || capacity % 4096 != 0) throw new ArgumentException($"storage capacity {capacity} is not a positive multiple of 4096");
        bool create = !File.Exists(path);
        _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        if (create)
        {
            var erased = new byte[1 << 16];
            erased.AsSpan().Fill(0xFF);
            for (long done = 0; done < capacity; done += erased.Length) _file.Write(erased, 0, (int)Math.Min(erased.Length, capacity - done));
            _file.Flush(true);
        }
        else if (_file.Length != capacity)
            throw new DeviceException($"storage file {path} holds {_file.Length:N0} bytes, not the {capacity:N0} configured; use its real size or a new file");
    }

    public long Length => _file.Length;
    public int SectorSize => 4096;

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
        Span<byte> erased = stackalloc byte[4096];
        erased.Fill(0xFF);
        _file.Position = offset;
        for (long done = 0; done < length; done += erased.Length) _file.Write(erased);
        _file.Flush(true);
    }

    public void Program(long offset, ReadOnlySpan<byte> data)
    {
        Check(offset, data.Length);
        _file.Position = offset;
        _file.Write(data);
        _file.Flush(true);
    }

    void Check(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > _file.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{length} bytes at {offset} are outside the {_file.Length}-byte storage");
    }

    public void Dispose() => _file.Dispose();
}
