using EdgeResNet.Common;
using EdgeResNet.Flashing.Storage;
using System.Device.Spi;
using System.Diagnostics;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.SpiNor;

/// <summary>
/// JEDEC SPI NOR flash (W25Q256JV / W25Q512JV / MX25L25645G class) on a <see cref="SpiDevice"/>,
/// readable by the runtime as an <see cref="IFlash"/>. Size from SFDP; chips over 16 MiB are driven
/// with the dedicated 4-byte-address opcodes, so the chip's address mode never matters.
/// Every command is one <see cref="SpiDevice.TransferFullDuplex"/> (one chip-select window) of at
/// most <see cref="MaxTransferBytes"/>; long reads become several commands. Not thread-safe.
/// </summary>
public sealed class SpiNorFlash : IWritableFlash
{
    public const int PageSize = NorGeometry.PageSize;
    public const int SectorSize = NorGeometry.SectorSize;
    int IWritableFlash.SectorSize => SectorSize;
    public const int BlockSize = NorGeometry.BlockSize;
    public const int DefaultMaxTransferBytes = Spidev.DefaultMaxTransferBytes;
    /// <summary>3-byte addresses reach 16 MiB; larger chips need 4-byte addresses.</summary>
    public const long ThreeByteAddressLimit = 16L << 20;

    // Instruction set (JEDEC common subset; Winbond W25Q512JV datasheet section 8).
    const byte WriteEnableOp = 0x06, ReadStatus1Op = 0x05, JedecIdOp = 0x9F, SfdpOp = 0x5A;
    const byte Read3 = 0x03, FastRead3 = 0x0B, Program3 = 0x02, SectorErase3 = 0x20, BlockErase3 = 0xD8;
    const byte Read4 = 0x13, FastRead4 = 0x0C, Program4 = 0x12, SectorErase4 = 0x21, BlockErase4 = 0xDC;
    const byte StatusBusy = 0x01, StatusWriteEnabled = 0x02;

    readonly SpiDevice _spi;
    readonly byte[] _tx, _rx;
    readonly int _addressBytes;

    /// <summary>Reads the JEDEC ID and the SFDP density; throws <see cref="DeviceException"/> when no chip answers or the size is unusable.</summary>
    public SpiNorFlash(SpiDevice spi, int maxTransferBytes = DefaultMaxTransferBytes)
    {
        _spi = spi ?? throw new ArgumentNullException(nameof(spi));
        // a command, a 4-byte address and a dummy byte must leave room for data
        if (maxTransferBytes < 16) throw new ArgumentOutOfRangeException(nameof(maxTransferBytes), maxTransferBytes, "an SPI transfer must hold at least 16 bytes");
        MaxTransferBytes = maxTransferBytes;
        _tx = new byte[maxTransferBytes];
        _rx = new byte[maxTransferBytes];

        JedecId = ReadJedecId();
        if (JedecId == 0xFFFFFF && (ReadStatus() & StatusBusy) != 0 && ReadStatus() != 0xFF)
        {
            // a chip still busy with an erase from before (a killed flashing run) ignores 0x9F: wait, then ask again
            WaitReady("the program/erase in progress at start-up", BlockEraseTimeout, sleep: true);
            JedecId = ReadJedecId();
        }
        if (JedecId == 0x000000 || JedecId == 0xFFFFFF)
            throw new DeviceException($"no chip answers on SPI bus {spi.ConnectionSettings.BusId} CS {spi.ConnectionSettings.ChipSelectLine} " +
                                      $"(JEDEC ID reads 0x{JedecId:X6}) — check wiring/chip select and the flash's power");
        Capacity = ReadCapacity();
        if (Capacity < BlockSize)
            throw new DeviceException($"{SpiNorParts.Name(JedecId)} reports {Capacity} bytes, less than one 64 KiB block; not a supported SPI NOR flash");
        if (Capacity > 1L << 32)
            throw new DeviceException($"{SpiNorParts.Name(JedecId)} reports {Capacity >> 20} MiB, beyond what 4-byte addresses reach (4 GiB)");
        _addressBytes = Capacity > ThreeByteAddressLimit ? 4 : 3;
        // plain read (0x03/0x13) is specified up to 50 MHz on these chips; faster clocks need fast read
        FastRead = spi.ConnectionSettings.ClockFrequency > 50_000_000;
    }

    /// <summary>Manufacturer, memory type, capacity code: 0xEF4020 for a W25Q512JV.</summary>
    public uint JedecId { get; }
    /// <summary>Bytes, from the SFDP basic parameter table (or the known-part table when a chip has no SFDP).</summary>
    public long Capacity { get; }
    public long Length => Capacity;
    public int MaxTransferBytes { get; }
    /// <summary>4 for chips over 16 MiB (opcodes 0x13/0x0C/0x12/0x21/0xDC), else 3 (0x03/0x0B/0x02/0x20/0xD8).</summary>
    public int AddressBytes => _addressBytes;
    /// <summary>Use fast read (8 dummy clocks); on by default above 50 MHz.</summary>
    public bool FastRead { get; set; }

    // Timeouts about 2x the W25Q512JV maxima (tPP 3 ms, tSE 400 ms, tBE2 2 s).
    public TimeSpan ProgramTimeout { get; set; } = TimeSpan.FromMilliseconds(10);
    public TimeSpan SectorEraseTimeout { get; set; } = TimeSpan.FromMilliseconds(1000);
    public TimeSpan BlockEraseTimeout { get; set; } = TimeSpan.FromMilliseconds(4000);

    /// <summary>Data bytes clocked in by read commands (excluding command, address and dummy bytes).</summary>
    public long BytesRead { get; private set; }
    /// <summary>Read commands issued (one per chip-select window).</summary>
    public long ReadCommands { get; private set; }

    /// <summary>"Winbond W25Q512JV, 64 MiB".</summary>
    public string Describe() => $"{SpiNorParts.Name(JedecId)}, {FormatSize(Capacity)}";

    /// <summary>A window onto part of the chip (an image slot), itself an <see cref="IFlash"/>.</summary>
    public FlashRegion Region(long offset, long length)
    {
        CheckRange(offset, length, "region");
        return new FlashRegion(this, offset, length);
    }

    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length, "read");
        byte op = FastRead ? (_addressBytes == 4 ? FastRead4 : FastRead3) : (_addressBytes == 4 ? Read4 : Read3);
        int dummy = FastRead ? 1 : 0;
        int header = 1 + _addressBytes + dummy;
        int done = 0;
        while (done < destination.Length)
        {
            int n = Math.Min(destination.Length - done, MaxTransferBytes - header);
            PutCommand(op, offset + done);
            _tx.AsSpan(1 + _addressBytes, dummy + n).Clear(); // dummy byte and data phase: MOSI low
            _spi.TransferFullDuplex(_tx.AsSpan(0, header + n), _rx.AsSpan(0, header + n));
            _rx.AsSpan(header, n).CopyTo(destination.Slice(done, n));
            done += n;
            BytesRead += n;
            ReadCommands++;
        }
    }

    /// <summary>
    /// Programs <paramref name="data"/> at <paramref name="offset"/>, one page program per page touched
    /// (a page program wraps within its 256-byte page, so writes are split at page boundaries).
    /// Programming only clears bits: erase first.
    /// </summary>
    public void Program(long offset, ReadOnlySpan<byte> data)
    {
        CheckRange(offset, data.Length, "program");
        byte op = _addressBytes == 4 ? Program4 : Program3;
        int header = 1 + _addressBytes;
        int done = 0;
        while (done < data.Length)
        {
            long address = offset + done;
            int n = Math.Min(data.Length - done, Math.Min(PageSize - (int)(address % PageSize), MaxTransferBytes - header));
            WriteEnable("page program", address);
            PutCommand(op, address);
            data.Slice(done, n).CopyTo(_tx.AsSpan(header));
            _spi.TransferFullDuplex(_tx.AsSpan(0, header + n), _rx.AsSpan(0, header + n));
            WaitReady($"page program at 0x{address:X}", ProgramTimeout, sleep: false);
            done += n;
        }
    }

    /// <summary>
    /// Erases [offset, offset + length) to 0xFF, which must be whole 4 KiB sectors: 64 KiB block
    /// erases where an aligned block lies wholly inside, sector erases elsewhere; nothing outside.
    /// </summary>
    public void Erase(long offset, long length)
    {
        if (offset % SectorSize != 0 || length % SectorSize != 0)
            throw new ArgumentException($"erase of {length} bytes at 0x{offset:X}: offset and length must be multiples of the 4 KiB sector");
        CheckRange(offset, length, "erase");
        long address = offset, end = offset + length;
        while (address < end)
        {
            bool block = address % BlockSize == 0 && end - address >= BlockSize;
            string what = block ? "64 KiB block erase" : "4 KiB sector erase";
            WriteEnable(what, address);
            byte op = block ? (_addressBytes == 4 ? BlockErase4 : BlockErase3) : (_addressBytes == 4 ? SectorErase4 : SectorErase3);
            int header = PutCommand(op, address);
            _spi.TransferFullDuplex(_tx.AsSpan(0, header), _rx.AsSpan(0, header));
            WaitReady($"{what} at 0x{address:X}", block ? BlockEraseTimeout : SectorEraseTimeout, sleep: true);
            address += block ? BlockSize : SectorSize;
        }
    }

    /// <summary>Status register-1: bit 0 WIP/BUSY, bit 1 WEL.</summary>
    public byte ReadStatus()
    {
        _tx[0] = ReadStatus1Op;
        _tx[1] = 0;
        _spi.TransferFullDuplex(_tx.AsSpan(0, 2), _rx.AsSpan(0, 2));
        return _rx[1];
    }

    uint ReadJedecId()
    {
        _tx.AsSpan(0, 4).Clear();
        _tx[0] = JedecIdOp;
        _spi.TransferFullDuplex(_tx.AsSpan(0, 4), _rx.AsSpan(0, 4));
        return (uint)(_rx[1] << 16 | _rx[2] << 8 | _rx[3]);
    }

    /// <summary>SFDP reads: opcode 0x5A, always a 3-byte address, then 8 dummy clocks.</summary>
    void ReadSfdp(int address, Span<byte> destination)
    {
        const int header = 5;
        _tx.AsSpan(0, header + destination.Length).Clear();
        _tx[0] = SfdpOp;
        _tx[1] = (byte)(address >> 16);
        _tx[2] = (byte)(address >> 8);
        _tx[3] = (byte)address;
        _spi.TransferFullDuplex(_tx.AsSpan(0, header + destination.Length), _rx.AsSpan(0, header + destination.Length));
        _rx.AsSpan(header, destination.Length).CopyTo(destination);
    }

    long ReadCapacity()
    {
        Span<byte> header = stackalloc byte[Sfdp.HeaderSize + Sfdp.ParameterHeaderSize];
        ReadSfdp(0, header);
        if (Sfdp.Dword(header, 0) != Sfdp.Signature)
        {
            // older chips have no SFDP; fall back on the part table
            if (SpiNorParts.TryGet(JedecId, out _, out long known)) return known;
            throw new DeviceException($"the flash on SPI bus {_spi.ConnectionSettings.BusId} CS {_spi.ConnectionSettings.ChipSelectLine} " +
                                      $"({SpiNorParts.Name(JedecId)}) has no SFDP table and is not a known part, so its size is unknown");
        }
        // JESD216: the first parameter header is always the Basic Flash Parameter Table
        var (id, lengthDwords, pointer) = Sfdp.ParseParameterHeader(header.Slice(Sfdp.HeaderSize));
        if ((id & 0xFF) != 0x00 || lengthDwords < 2)
            throw new DeviceException($"{SpiNorParts.Name(JedecId)}: the first SFDP parameter header (ID 0x{id:X4}, {lengthDwords} DWORDs) is not a basic flash parameter table");
        Span<byte> bfpt = stackalloc byte[8];
        ReadSfdp(pointer, bfpt);
        return Sfdp.DensityBytes(Sfdp.Dword(bfpt, 1));
    }

    /// <summary>Opcode and big-endian address into the transmit buffer; returns the bytes written.</summary>
    int PutCommand(byte opcode, long address)
    {
        _tx[0] = opcode;
        for (int i = 0; i < _addressBytes; i++)
            _tx[1 + i] = (byte)(address >> (8 * (_addressBytes - 1 - i)));
        return 1 + _addressBytes;
    }

    void WriteEnable(string operation, long address)
    {
        _tx[0] = WriteEnableOp;
        _spi.TransferFullDuplex(_tx.AsSpan(0, 1), _rx.AsSpan(0, 1));
        // a write-protected, busy or absent chip ignores 0x06: catch it here rather than as silently missing data
        byte status = ReadStatus();
        if ((status & StatusBusy) != 0)
            throw new DeviceException($"{operation} at 0x{address:X}: the chip is still busy with an earlier program or erase (status 0x{status:X2}); " +
                                      "it may be stuck, or an earlier operation timed out");
        if ((status & StatusWriteEnabled) == 0)
            throw new DeviceException($"{operation} at 0x{address:X}: write enable did not set the WEL bit (status 0x{status:X2}); " +
                                      "the chip is write-protected, busy or not answering");
    }

    const int MinPollsBeforeTimeout = 16;

    void WaitReady(string operation, TimeSpan timeout, bool sleep)
    {
        var clock = Stopwatch.StartNew();
        for (int polls = 1; ; polls++)
        {
            // Poll before looking at the clock, and give up only after a few looks: a thread
            // descheduled past the deadline (a loaded host, a GC pause) must not fail a chip that is fine.
            byte status = ReadStatus();
            if ((status & StatusBusy) == 0) return;
            if (clock.Elapsed > timeout && polls >= MinPollsBeforeTimeout)
                throw new DeviceException($"{operation} did not finish within the {timeout.TotalMilliseconds:0.###} ms timeout " +
                                          $"(status 0x{status:X2}, still busy); the chip is stuck or under-powered, or MISO is held high");
            if (sleep) Thread.Sleep(1); // erases take tens of milliseconds: do not spin on the bus
        }
    }

    internal void CheckRange(long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset + count > Capacity)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{what} of {count} bytes at 0x{offset:X} is outside the {Capacity}-byte ({FormatSize(Capacity)}) flash");
    }

    static string FormatSize(long bytes) =>
        bytes % (1L << 30) == 0 ? $"{bytes >> 30} GiB" :
        bytes % (1L << 20) == 0 ? $"{bytes >> 20} MiB" :
        bytes % (1L << 10) == 0 ? $"{bytes >> 10} KiB" : $"{bytes} B";
}
