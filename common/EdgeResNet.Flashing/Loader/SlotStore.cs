using EdgeResNet.Common;
using EdgeResNet.Common.Signing;
using System.Buffers.Binary;
using EdgeResNet.Flashing.Storage;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.Loader;

/// <summary>The commit record at the start of a slot (24 bytes, little-endian, docs/serial-protocol.md).</summary>
public readonly record struct SlotRecord(uint Generation, uint ImageLength, uint ImageCrc)
{
    public const int Size = 24;
    /// <summary>"ERSLOT01": EdgeResNet slot record, version 1.</summary>
    public static ReadOnlySpan<byte> Magic => "ERSLOT01"u8;

    public void Encode(Span<byte> r)
    {
        Magic.CopyTo(r);
        BinaryPrimitives.WriteUInt32LittleEndian(r.Slice(8), Generation);
        BinaryPrimitives.WriteUInt32LittleEndian(r.Slice(12), ImageLength);
        BinaryPrimitives.WriteUInt32LittleEndian(r.Slice(16), ImageCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(r.Slice(20), Crc32.Append(0, r.Slice(0, 20)));
    }

    /// <summary>The record, or null with the reason it is not one.</summary>
    public static SlotRecord? Decode(ReadOnlySpan<byte> r, out string reason)
    {
        reason = "";
        if (!r.Slice(0, Size).ContainsAnyExcept((byte)0xFF)) { reason = "empty"; return null; }
        if (!r.StartsWith(Magic)) { reason = "no commit record (the write was never committed)"; return null; }
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(r.Slice(20)), computed = Crc32.Append(0, r.Slice(0, 20));
        if (stored != computed) { reason = $"commit record CRC mismatch (stored {stored:x8}, computed {computed:x8}; an interrupted commit?)"; return null; }
        return new SlotRecord(BinaryPrimitives.ReadUInt32LittleEndian(r.Slice(8)), BinaryPrimitives.ReadUInt32LittleEndian(r.Slice(12)), BinaryPrimitives.ReadUInt32LittleEndian(r.Slice(16)));
    }
}

/// <summary>One slot as found: its record (if intact) and whether it boots, or why not; with trusted keys, who signed it.</summary>
public sealed record SlotStatus(char Slot, SlotRecord? Record, bool Bootable, string Reason, FlashImage? Image, IFlash? Region, SignatureCheck? Signature = null);

/// <summary>The slot the board boots: its letter, generation, the image's flash region, the opened image, and its checked signature (with trusted keys).</summary>
public sealed record BootImage(char Slot, uint Generation, IFlash Region, FlashImage Image, SignatureCheck? Signature);

/// <summary>
/// Two image slots, A and B, in one writable flash, so that writing a new image never endangers
/// the one that boots. Slot size = capacity / 2 rounded down to 64 KiB (a NOR block); each slot
/// is a 4 KiB record sector followed by the image. The record (magic, generation, image length,
/// image CRC, record CRC) is programmed last: it is the commit. <see cref="BeginWrite"/> erases
/// the target's record first, so a half-written slot can never boot, and only ever writes the
/// slot that does not boot now. <see cref="Boot"/> takes the intact slot with the highest
/// generation whose image opens, else the other one.
/// <para>With trusted keys (<see cref="Trust"/>) a slot boots only if its image carries a signature
/// block by one of them over exactly its bytes; writing needs the signed manifest first
/// (<see cref="Authorize"/>), before anything is erased, and refuses a security counter below the
/// booting image's (anti-rollback). One write session (BEGIN to the next BEGIN) erases each sector
/// at most once, takes a bounded number of DATA chunks, and reads the whole slot back at most once.</para>
/// <para>The store assumes it owns the flash: it remembers each slot's status once read (a slot is
/// read whole when sections are verified) until it writes that slot; a new store sees changes made
/// behind its back.</para>
/// </summary>
public sealed class SlotStore
{
    public const int SlotAlignment = NorGeometry.BlockSize;
    public const int RecordSectorSize = NorGeometry.SectorSize;

    readonly SectorWriter _writer;
    readonly bool _verifySections;
    char? _target;
    SlotRecord _pending;
    uint? _committedGeneration;
    SignatureBlock? _manifest;        // verified by MANIFEST, for the next BEGIN; cleared by COMMIT and by a new host session
    SignatureBlock? _writingManifest; // the one BEGIN took: COMMIT checks the slot against it
    readonly HashSet<long> _erasedThisSession = new();
    long _chunksThisSession;
    bool _commitChecked;

    /// <param name="verifySections">
    /// Boot (and the choice of the slot to overwrite, which must agree with boot) also checks every
    /// section CRC and the whole-image CRC: one read of the image. Without it only the header and
    /// the layer table are checked.
    /// </param>
    /// <param name="trust">Public keys whose signed images may boot and be written; none: unsigned images boot too.</param>
    public SlotStore(IWritableFlash flash, bool verifySections = true, IReadOnlyList<TrustedKey>? trust = null)
    {
        if (RecordSectorSize % flash.SectorSize != 0)
            throw new DeviceException($"flash sector size {flash.SectorSize} does not divide the {RecordSectorSize}-byte slot record sector");
        Flash = flash;
        SlotSize = flash.Length / 2 / SlotAlignment * SlotAlignment;
        if (SlotSize == 0) throw new DeviceException($"a flash of {flash.Length:N0} bytes is too small for two {SlotAlignment / 1024} KiB-aligned image slots");
        _writer = new SectorWriter(flash) { EraseAllowed = sector => _target == null || _erasedThisSession.Add(sector) };
        _verifySections = verifySections;
        Trust = trust ?? [];
    }

    public IReadOnlyList<TrustedKey> Trust { get; }
    public bool RequiresSignature => Trust.Count > 0;
    /// <summary>
    /// The anti-rollback floor: the highest security counter among the slots whose record is intact and
    /// whose manifest is signed by a trusted key (0 without trusted keys); the booting image's counter is
    /// never above it. No image below it is written or booted, so a damaged newest slot cannot bring back
    /// an older, lower-counter fallback. Reads two records and two blocks, no image bytes.
    /// </summary>
    public uint SecurityFloor
    {
        get
        {
            if (!RequiresSignature) return 0;
            uint floor = 0;
            foreach (char slot in "AB")
            {
                if (ReadRecord(slot, out _) is not { } rec || rec.ImageLength <= SignatureBlock.Size || rec.ImageLength > MaxImageLength) continue;
                var block = new byte[SignatureBlock.Size];
                Flash.Read(ImageOffset(slot) + rec.ImageLength - SignatureBlock.Size, block);
                if (SignatureBlock.Decode(block, out _) is not { } manifest) continue;
                try { floor = Math.Max(floor, ImageSigning.VerifyManifest(manifest, Trust).SecurityCounter); }
                catch (SignatureException) { }
            }
            return floor;
        }
    }

    /// <summary>
    /// A host connected (the loader server calls this first): the per-session bounds start afresh, and a
    /// manifest verified in an earlier session no longer authorises anything.
    /// </summary>
    public void BeginSession()
    {
        _erasedThisSession.Clear();
        _chunksThisSession = 0;
        _manifest = null;
    }

    public IWritableFlash Flash { get; }
    public long Capacity => Flash.Length;
    public long SlotSize { get; }
    /// <summary>The largest image a slot holds (the slot minus its record sector; the record stores a u32 length).</summary>
    public long MaxImageLength => MaxImageLengthFor(SlotSize);
    public static long MaxImageLengthFor(long slotSize) => Math.Min(slotSize - RecordSectorSize, uint.MaxValue);
    /// <summary>Sectors written into the target slot so far (for status reports).</summary>
    public SectorCounts Written => _writer.Counts;
    /// <summary>The slot being written since <see cref="BeginWrite"/>, or null.</summary>
    public char? Target => _target;

    public long SlotOffset(char slot) => slot switch { 'A' => 0, 'B' => SlotSize, _ => throw new ArgumentException($"no slot '{slot}'; slots are A and B") };
    public long ImageOffset(char slot) => SlotOffset(slot) + RecordSectorSize;

    /// <summary>A slot's record and, if intact, its opened image; read once, until this store writes the slot.</summary>
    public SlotStatus Inspect(char slot) => _status[slot - 'A'] ??= Read(slot);

    readonly SlotStatus?[] _status = new SlotStatus?[2];

    SlotRecord? ReadRecord(char slot, out string reason)
    {
        var r = new byte[SlotRecord.Size];
        Flash.Read(SlotOffset(slot), r);
        return SlotRecord.Decode(r, out reason);
    }

    SlotStatus Read(char slot)
    {
        var record = ReadRecord(slot, out string reason);
        if (record is not { } rec) return new SlotStatus(slot, null, false, reason, null, null);
        if (rec.ImageLength == 0 || rec.ImageLength > MaxImageLength)
            return new SlotStatus(slot, rec, false, $"the record says {rec.ImageLength:N0} bytes, not 1..{MaxImageLength:N0}", null, null);
        var region = new FlashRegion(Flash, ImageOffset(slot), rec.ImageLength);
        try
        {
            var image = FlashImage.Open(region, _verifySections);
            if (!ImageSigning.IsImageOrSigned(image.ImageSize, rec.ImageLength))
                return new SlotStatus(slot, rec, false, $"the image header says {image.ImageSize:N0} bytes, the record {rec.ImageLength:N0}", null, null);
            var signature = RequiresSignature ? ImageSigning.Verify(region, image.ImageSize, Trust) : (SignatureCheck?)null;
            if (signature is { } sig && SecurityFloor is var floor && sig.SecurityCounter < floor)
                return new SlotStatus(slot, rec, false, $"security counter {sig.SecurityCounter} is below the floor {floor} a newer signed slot set (anti-rollback); flash an image signed with --counter {floor} or higher", null, null);
            return new SlotStatus(slot, rec, true, "bootable", image, region, signature);
        }
        catch (Exception e) when (e is FlashImageException or SignatureException)
        {
            return new SlotStatus(slot, rec, false, e is SignatureException ? "signature: " + e.Message : e.Message, null, null);
        }
    }

    /// <summary>
    /// The slot to boot: the bootable one with the highest generation. Throws
    /// <see cref="FlashImageException"/> with both reasons if neither boots.
    /// </summary>
    public BootImage Boot()
    {
        var boot = FindBoot();
        if (boot is null)
            throw new FlashImageException($"no bootable image in slot A or B: A: {Inspect('A').Reason}; B: {Inspect('B').Reason} — flash one with `edgeresnet flash`");
        return new BootImage(boot.Slot, boot.Record!.Value.Generation, boot.Region!, boot.Image!, boot.Signature);
    }

    /// <summary>
    /// The bootable slot with the highest generation, or null. Only the newer slot is opened (read
    /// whole when sections are verified), and the older one only if the newer does not boot.
    /// </summary>
    public SlotStatus? FindBoot()
    {
        uint a = Generation('A'), b = Generation('B');
        var newer = Inspect(b > a ? 'B' : 'A');
        if (newer.Bootable) return newer;
        var older = Inspect(b > a ? 'A' : 'B');
        return older.Bootable ? older : null;
    }

    /// <summary>The generation in a slot's record (0 without an intact record): 24 bytes, or what <see cref="Inspect"/> already read.</summary>
    uint Generation(char slot) => (_status[slot - 'A']?.Record ?? ReadRecord(slot, out _))?.Generation ?? 0;

    static SlotStatus? Newest(SlotStatus a, SlotStatus b)
    {
        if (a.Bootable && b.Bootable) return b.Record!.Value.Generation > a.Record!.Value.Generation ? b : a;
        return a.Bootable ? a : b.Bootable ? b : null;
    }

    /// <summary>One status line per slot, for `status` commands and the loader's log.</summary>
    public IReadOnlyList<string> Describe()
    {
        var slots = new[] { Inspect('A'), Inspect('B') };
        var boot = Newest(slots[0], slots[1]);
        return slots.Select(s =>
        {
            if (s.Record is not { } r) return $"slot {s.Slot}: {s.Reason}";
            string state = s.Bootable ? (boot?.Slot == s.Slot ? "bootable, boots" : "bootable") : "not bootable: " + s.Reason;
            string signed = s.Signature is { } sig ? $", signed by key {sig.KeyId}, security counter {sig.SecurityCounter}" : "";
            return $"slot {s.Slot}: generation {r.Generation}, {r.ImageLength:N0} bytes, CRC {r.ImageCrc:x8}{signed}, {state}";
        }).ToArray();
    }

    /// <summary>
    /// Takes the signed manifest of the image about to be written (its signature block) before BEGIN
    /// erases anything. With trusted keys: it must be signed by one of them, and its security counter
    /// may not be below the booting image's. Without: it is kept unchecked (the board trusts no key).
    /// Returns whether it was checked.
    /// </summary>
    public bool Authorize(SignatureBlock manifest)
    {
        if (manifest.ImageLength <= 0 || manifest.ImageLength > MaxImageLength - SignatureBlock.Size)
            throw new LoaderException(LoaderError.TooLarge, $"the manifest announces a {manifest.ImageLength:N0}-byte image; a slot holds at most {MaxImageLength - SignatureBlock.Size:N0} bytes and its signature block");
        // Checked before it replaces anything: a refused manifest leaves the state as it was.
        if (RequiresSignature)
        {
            try { ImageSigning.VerifyManifest(manifest, Trust); }
            catch (SignatureException e) { throw new LoaderException(LoaderError.Unauthenticated, "manifest refused: " + e.Message); }
            uint floor = SecurityFloor;
            if (manifest.SecurityCounter < floor)
                throw new LoaderException(LoaderError.Rollback, $"security counter {manifest.SecurityCounter} is below the {floor} of the image that boots now: a downgrade, refused (sign the image with --counter {floor} or higher)");
        }
        _manifest = manifest;
        return RequiresSignature;
    }

    /// <summary>
    /// Starts writing an image of <paramref name="length"/> bytes with CRC-32 <paramref name="crc"/>
    /// into the slot that does not boot now (A if none does), after erasing that slot's record so a
    /// half-written slot can never boot. Idempotent: the same call again picks the same slot.
    /// </summary>
    public char BeginWrite(long length, uint crc)
    {
        if (length <= 0 || length > MaxImageLength)
            throw new LoaderException(LoaderError.TooLarge, length <= 0 ? "the image is empty"
                : $"the image is {length:N0} bytes but a slot holds at most {MaxImageLength:N0} (flash of {Capacity:N0} bytes split into slots A and B); use a bigger flash or pack with fewer weight bits");
        // Checked before anything is erased: with trusted keys only the image of a verified manifest may be written.
        if (RequiresSignature && (_manifest is null || length != _manifest.ImageLength + SignatureBlock.Size))
            throw new LoaderException(LoaderError.Unauthenticated, _manifest is null
                ? "this board takes only signed images: send the signed manifest (MANIFEST) before BEGIN; `edgeresnet flash` does so for an image signed with `edgeresnet sign`"
                : $"BEGIN announces {length:N0} bytes, the verified manifest {_manifest.ImageLength + SignatureBlock.Size:N0} (image and signature block)");
        char target = FindBoot()?.Slot == 'A' ? 'B' : 'A';
        long record = SlotOffset(target);
        var sector = new byte[RecordSectorSize];
        Flash.Read(record, sector);
        if (sector.AsSpan().ContainsAnyExcept((byte)0xFF))
        {
            Flash.Erase(record, RecordSectorSize);
            Flash.Sync(); // the old record is gone for good before its image is overwritten
        }
        _status[target - 'A'] = null;
        _target = target;
        _pending = new SlotRecord(0, (uint)length, crc);
        _committedGeneration = null;
        _writingManifest = _manifest; // a repeated BEGIN (its reply was lost) takes the same one
        _commitChecked = false;
        return target;
    }

    /// <summary>
    /// Writes image bytes at <paramref name="offset"/> (a multiple of 4096) of the target slot; a repeat is harmless.
    /// Per host session (<see cref="BeginSession"/>) a sector is erased at most once and the chunks are bounded.
    /// </summary>
    public SectorAction WriteData(long offset, ReadOnlySpan<byte> data)
    {
        var target = RequireWriting();
        // After the commit the target is the boot slot: never write it again.
        if (_committedGeneration is not null) throw new LoaderException(LoaderError.State, $"slot {target} is committed; BEGIN a new image first");
        if (offset < 0 || offset % RecordSectorSize != 0 || data.Length == 0 || data.Length > RecordSectorSize || offset + data.Length > _pending.ImageLength)
            throw new LoaderException(LoaderError.Range, $"{data.Length} bytes at {offset} are not a 4 KiB-aligned chunk of the {_pending.ImageLength:N0}-byte image");
        // A session sends each chunk once, plus resends: four times the image's chunks bounds a host that misbehaves.
        long limit = 4 * ((_pending.ImageLength + RecordSectorSize - 1) / RecordSectorSize) + 64;
        if (++_chunksThisSession > limit)
            throw new LoaderException(LoaderError.Limit, $"{limit:N0} DATA chunks in this session, four times what the {_pending.ImageLength:N0}-byte image needs; BEGIN again");
        // The SectorWriter works in flash sectors, which divide 4 KiB (checked in the constructor).
        var d = _writer.Write(ImageOffset(target) + offset, data);
        return d.Erased > 0 ? SectorAction.Erased : d.Programmed > 0 ? SectorAction.Programmed : SectorAction.Skipped;
    }

    /// <summary>CRC-32 of the target slot's image bytes [offset, offset + length): the host compares it to skip blocks already right.</summary>
    public uint QueryCrc(long offset, long length)
    {
        var target = RequireWriting();
        if (offset < 0 || length < 0 || offset + length > _pending.ImageLength)
            throw new LoaderException(LoaderError.Range, $"[{offset}, +{length}) is outside the {_pending.ImageLength:N0}-byte image");
        return Crc32.Of(Flash, ImageOffset(target) + offset, length, new byte[64 * 1024]);
    }

    /// <summary>
    /// Checks the whole target image (its CRC equals the announced one, and it opens with every
    /// section verified), then programs the record with generation = highest + 1: from then on it
    /// boots. A repeat after success returns the same generation.
    /// </summary>
    public uint Commit()
    {
        if (_committedGeneration is { } done) return done;
        var target = RequireWriting();
        if (_commitChecked)
            throw new LoaderException(LoaderError.Limit, "COMMIT already read this slot back once in this session and found it wrong; BEGIN again (the sectors already right are kept)");
        _commitChecked = true;
        var region = new FlashRegion(Flash, ImageOffset(target), _pending.ImageLength);
        uint crc = Crc32.Of(region, 0, region.Length, new byte[64 * 1024]);
        if (crc != _pending.ImageCrc)
            throw new LoaderException(LoaderError.Verify, $"slot {target} holds an image with CRC {crc:x8}, not the announced {_pending.ImageCrc:x8}: some blocks are missing or wrong; flash again (it resumes)");
        FlashImage image;
        try { image = FlashImage.Open(region, verifySections: true); }
        catch (FlashImageException e) { throw new LoaderException(LoaderError.Verify, $"the image written to slot {target} is not a valid flash image: {e.Message}"); }
        if (!ImageSigning.IsImageOrSigned(image.ImageSize, _pending.ImageLength))
            throw new LoaderException(LoaderError.Verify, $"BEGIN announced {_pending.ImageLength:N0} bytes but the image in slot {target} is {image.ImageSize:N0} bytes (with or without its {SignatureBlock.Size}-byte signature block, it must be the whole file)");
        SignatureCheck? signature = null;
        if (RequiresSignature)
        {
            // The slot must hold exactly the image of the manifest verified before BEGIN, and hash to it.
            var block = ImageSigning.ReadBlock(region, image.ImageSize, out string reason);
            if (_writingManifest is null)
                throw new LoaderException(LoaderError.Unauthenticated, "no verified manifest for this write; send MANIFEST, then BEGIN again");
            if (block is null || !block.Encode().AsSpan().SequenceEqual(_writingManifest.Encode()))
                throw new LoaderException(LoaderError.Unauthenticated, $"slot {target} does not end with the signature block of the verified manifest ({(block is null ? reason : "another block")})");
            try { signature = ImageSigning.Verify(region, image.ImageSize, Trust); }
            catch (SignatureException e) { throw new LoaderException(LoaderError.Unauthenticated, $"the image written to slot {target}: {e.Message}"); }
        }

        char other = target == 'A' ? 'B' : 'A';
        uint generation = (ReadRecord(other, out _)?.Generation ?? 0) + 1;
        var record = new byte[SlotRecord.Size];
        (_pending with { Generation = generation }).Encode(record);
        // The record sector was erased by BeginWrite and nothing else writes it, so this is a pure program:
        // the writer programs the record's page and leaves the rest of the sector erased.
        Flash.Sync(); // the image is durable before the record that makes it boot
        _writer.Write(SlotOffset(target), record);
        Flash.Sync();
        _committedGeneration = generation;
        _manifest = _writingManifest = null; // the next image needs its own manifest
        _status[target - 'A'] = new SlotStatus(target, _pending with { Generation = generation }, true, "bootable", image, region, signature);
        return generation;
    }

    char RequireWriting() => _target ?? throw new LoaderException(LoaderError.State, "no image write in progress: BEGIN first");
}
