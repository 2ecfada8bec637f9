using EdgeResNet.Common;
using EdgeResNet.Flashing.Storage;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.Loader;

/// <summary>What <see cref="SectorWriter.WriteSector"/> had to do to one sector.</summary>
public enum SectorAction
{
    /// <summary>The sector already held the data: nothing written (this is what makes a re-run resume).</summary>
    Skipped,
    /// <summary>The data only clears bits of what was there: programmed without an erase.</summary>
    Programmed,
    /// <summary>The data sets some bit: the sector was erased, then programmed.</summary>
    Erased,
}

/// <summary>Sectors skipped, programmed only, and erased then programmed: each written sector counts once.</summary>
public readonly record struct SectorCounts(long Skipped, long Programmed, long Erased)
{
    public long Total => Skipped + Programmed + Erased;
    public static SectorCounts operator +(SectorCounts a, SectorCounts b) => new(a.Skipped + b.Skipped, a.Programmed + b.Programmed, a.Erased + b.Erased);
    public override string ToString() => $"{Total} sectors: {Skipped} already right, {Programmed} programmed, {Erased} erased and programmed";
}

/// <summary>Progress of <see cref="SectorWriter.WriteAndVerify(IWritableFlash, long, Stream, long, IProgress{WriteProgress}?)"/>.</summary>
public readonly record struct WriteProgress(long BytesDone, long BytesTotal, SectorCounts Sectors);

/// <summary>
/// The one routine that puts bytes into NOR flash, shared by the direct SPI flashing tool and the
/// serial loader. Per sector: read it; identical → skip; every new bit only clears bits
/// ((old &amp; new) == new) → program only; otherwise erase, then program. It programs in 256-byte
/// pages (the NOR page) and leaves out pages that need nothing, then reads the sector back and
/// compares. Skipping what is already right makes every write resumable: after a power cut, the
/// same write again only touches the sectors that were not finished. Erases are slow (tens of
/// milliseconds) and wear the chip, so they happen only when a bit must go from 0 to 1.
/// </summary>
public sealed class SectorWriter
{
    /// <summary>The NOR program page: one Program call never crosses it.</summary>
    public const int PageSize = NorGeometry.PageSize;

    readonly byte[] _old, _new;

    public SectorWriter(IWritableFlash flash)
    {
        int s = flash.SectorSize;
        if (s <= 0 || s % PageSize != 0) throw new ArgumentException($"sector size {s} is not a positive multiple of the {PageSize}-byte page");
        Flash = flash;
        _old = new byte[s];
        _new = new byte[s];
    }

    public IWritableFlash Flash { get; }
    /// <summary>Asked before each sector erase (with the sector's offset); false refuses it (the loader's wear bound).</summary>
    public Func<long, bool>? EraseAllowed { get; init; }
    public int SectorSize => _old.Length;
    /// <summary>Every sector written through this writer so far.</summary>
    public SectorCounts Counts { get; private set; }

    /// <summary>
    /// Writes one sector at <paramref name="offset"/> (sector aligned) so that it holds
    /// <paramref name="data"/> followed by 0xFF up to the sector's end, then verifies it.
    /// </summary>
    public SectorAction WriteSector(long offset, ReadOnlySpan<byte> data)
    {
        int size = SectorSize;
        if (offset < 0 || offset % size != 0) throw new ArgumentException($"write at 0x{offset:X} is not aligned to the {size}-byte sector");
        if (data.Length > size) throw new ArgumentException($"{data.Length} bytes do not fit one {size}-byte sector");
        if (offset + size > Flash.Length) throw new ArgumentOutOfRangeException(nameof(offset), $"sector at 0x{offset:X} is outside the {Flash.Length}-byte flash");

        // A partial (last) sector is padded with the erased value, so padding never forces an erase.
        data.CopyTo(_new);
        _new.AsSpan(data.Length).Fill(0xFF);
        Flash.Read(offset, _old);

        SectorAction action;
        if (_old.AsSpan().SequenceEqual(_new)) action = SectorAction.Skipped;
        else if (OnlyClearsBits(_old, _new))
        {
            action = SectorAction.Programmed;
            ProgramPages(offset, skipPage: p => _old.AsSpan(p, PageSize).SequenceEqual(_new.AsSpan(p, PageSize)));
        }
        else
        {
            if (EraseAllowed is { } allowed && !allowed(offset))
                throw new LoaderException(LoaderError.Limit, $"the sector at 0x{offset:X} was already erased once in this session; an image needs each sector erased at most once (BEGIN again for a new session)");
            action = SectorAction.Erased;
            Flash.Erase(offset, size);
            ProgramPages(offset, skipPage: p => !_new.AsSpan(p, PageSize).ContainsAnyExcept((byte)0xFF));
        }

        if (action != SectorAction.Skipped)
        {
            Flash.Read(offset, _old);
            if (!_old.AsSpan().SequenceEqual(_new))
            {
                int at = _old.AsSpan().CommonPrefixLength(_new);
                throw new DeviceException($"flash verify failed at 0x{offset + at:X}: read 0x{_old[at]:X2} after writing 0x{_new[at]:X2} (write-protected, worn or badly wired flash?)");
            }
        }
        Counts += action switch
        {
            SectorAction.Skipped => new SectorCounts(1, 0, 0),
            SectorAction.Programmed => new SectorCounts(0, 1, 0),
            _ => new SectorCounts(0, 0, 1),
        };
        return action;
    }

    /// <summary>Writes <paramref name="data"/> from a sector-aligned offset, sector by sector (the last one padded with 0xFF).</summary>
    public SectorCounts Write(long offset, ReadOnlySpan<byte> data)
    {
        var before = Counts;
        for (int done = 0; done < data.Length; done += SectorSize)
            WriteSector(offset + done, data.Slice(done, Math.Min(SectorSize, data.Length - done)));
        return Counts + new SectorCounts(-before.Skipped, -before.Programmed, -before.Erased);
    }

    /// <summary>
    /// Puts a flash image on a chip at <paramref name="offset"/> (a multiple of the erase sector):
    /// checks that it fits, writes and reads back every sector (<see cref="WriteAndVerify(IWritableFlash, long, IFlash, long, IProgress{WriteProgress}?)"/>),
    /// then opens the image from the chip with every CRC, as the runtime will read it.
    /// </summary>
    public static SectorCounts WriteImage(IWritableFlash flash, long offset, byte[] image, IProgress<WriteProgress>? progress = null)
    {
        CheckOffset(offset);
        if (offset + image.Length > flash.Length)
            throw new UsageException($"the {image.Length:N0}-byte image does not fit at offset {offset:N0} of the {flash.Length:N0}-byte chip");
        var counts = WriteAndVerify(flash, offset, new MemoryFlash(image), image.Length, progress);
        FlashImage.Open(new FlashRegion(flash, offset, image.Length), verifySections: true);
        return counts;
    }

    /// <summary>An image offset must start an erase sector (callers check it before opening a device).</summary>
    public static void CheckOffset(long offset)
    {
        if (offset < 0 || offset % NorGeometry.SectorSize != 0)
            throw new UsageException($"--offset {offset} must be a non-negative multiple of {NorGeometry.SectorSize} (the erase sector)");
    }

    /// <summary>
    /// Writes <paramref name="length"/> bytes of <paramref name="source"/> at <paramref name="offset"/>
    /// and reads every written sector back. Run it again after an interruption: sectors already
    /// right are skipped.
    /// </summary>
    public static SectorCounts WriteAndVerify(IWritableFlash flash, long offset, Stream source, long length, IProgress<WriteProgress>? progress = null)
        => WriteAndVerify(flash, offset, length, progress, (at, chunk) =>
        {
            try { source.ReadExactly(chunk); }
            catch (EndOfStreamException) { throw new DeviceException($"the source ended before byte {at + chunk.Length:N0} of {length:N0}"); }
        });

    /// <inheritdoc cref="WriteAndVerify(IWritableFlash, long, Stream, long, IProgress{WriteProgress}?)"/>
    public static SectorCounts WriteAndVerify(IWritableFlash flash, long offset, IFlash source, long length, IProgress<WriteProgress>? progress = null)
    {
        if (length > source.Length) throw new ArgumentException($"the source holds {source.Length:N0} bytes, not {length:N0}");
        return WriteAndVerify(flash, offset, length, progress, (at, chunk) => source.Read(at, chunk));
    }

    delegate void ReadChunk(long at, Span<byte> chunk);

    static SectorCounts WriteAndVerify(IWritableFlash flash, long offset, long length, IProgress<WriteProgress>? progress, ReadChunk read)
    {
        if (length < 0 || offset < 0 || offset + length > flash.Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"{length:N0} bytes at 0x{offset:X} do not fit the {flash.Length:N0}-byte flash");
        var writer = new SectorWriter(flash);
        var chunk = new byte[writer.SectorSize];
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(chunk.Length, length - done);
            read(done, chunk.AsSpan(0, n));
            writer.WriteSector(offset + done, chunk.AsSpan(0, n));
            done += n;
            progress?.Report(new WriteProgress(done, length, writer.Counts));
        }
        return writer.Counts;
    }

    static bool OnlyClearsBits(byte[] old, byte[] @new)
    {
        for (int i = 0; i < old.Length; i++)
            if ((old[i] & @new[i]) != @new[i]) return false;
        return true;
    }

    void ProgramPages(long offset, Func<int, bool> skipPage)
    {
        for (int p = 0; p < _new.Length; p += PageSize)
            if (!skipPage(p)) Flash.Program(offset + p, _new.AsSpan(p, PageSize));
    }
}
