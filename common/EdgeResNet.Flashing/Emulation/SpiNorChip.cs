using EdgeResNet.Common;
using EdgeResNet.Runtime.Flash;
using System.Buffers.Binary;
using System.Device.Spi;
using Microsoft.Win32.SafeHandles;

namespace EdgeResNet.Flashing.Emulation;

/// <summary>
/// An <b>emulation</b>, not a driver: a Winbond W25Q512JV SPI NOR flash (64 MiB, JEDEC ID EF4020) by
/// default, or another size and ID (a 32 MiB W25Q256JV is EF4019), written from the W25Q512JV /
/// W25Q256JV datasheets and JEDEC JESD216, standing in for the chip behind an <see cref="SpiDevice"/>
/// in tests and on machines without the hardware.
/// <para>Each <see cref="TransferFullDuplex"/>, <see cref="Write"/>, <see cref="Read"/>, <see cref="WriteByte"/>
/// or <see cref="ReadByte"/> call is one chip-select window: the first MOSI byte is the instruction.</para>
/// <para>Modelled as on the chip: erased bytes are 0xFF; page program only clears bits (new = old AND data)
/// and wraps within its 256-byte page (past 256 data bytes the last 256 win); program and erase need the
/// write-enable latch (WEL, set by 0x06, cleared by 0x04, by reset and when a program/erase finishes) and
/// are silently ignored without it; an erase whose window carries more than instruction + address is
/// ignored (the datasheet requires /CS high right after the address); after a program or erase the chip
/// is busy (status bit 0) and ignores every instruction except read status and reset; 0xB7/0xE9 switch
/// the 3-byte instructions (0x03/0x0B/0x02/0x20/0xD8) to 4-byte addresses and back, while
/// 0x13/0x0C/0x12/0x21/0xDC always take 4; 0x66 then 0x99 (in consecutive windows) resets; 0x9F answers
/// the JEDEC ID; 0x5A (3-byte address, 8 dummy clocks) reads an SFDP header and basic flash parameter
/// table giving the density. Reads wrap from the last byte to address 0. MISO reads 0xFF wherever the
/// chip does not drive it (the line is pulled up).</para>
/// <para>Simplifications: the busy time is counted in status reads, not time: a page program stays busy
/// for <see cref="ProgramBusyPolls"/> status bytes clocked out by 0x05 (each byte, also several in one
/// window, is one poll), a sector/block erase for <see cref="SectorEraseBusyPolls"/> /
/// <see cref="BlockEraseBusyPolls"/>, forever while <see cref="Hung"/>; the data change happens at once
/// (invisible, as reads are ignored while busy). A reset ends a busy period with the change already made,
/// where the chip would leave the data undefined. Not modelled: status registers 2/3 and block protection,
/// the extended address register (3-byte addresses in 3-byte mode reach the lowest 16 MiB), suspend/resume,
/// dual/quad I/O, security registers, chip erase.</para>
/// <para>Power loss (<see cref="CutPowerAfter"/>): once a given number of program and erase operations
/// have completed, the next one is cut. With <c>midOperation</c> a cut page program leaves a random subset
/// of the bits it would clear cleared, and a cut erase a random mix of erased and old bytes (seeded);
/// without, it leaves nothing. From then on every window throws <see cref="PowerLostException"/> until
/// <see cref="PowerOn"/>, which is a power-on reset (3-byte addresses, write-enable off).</para>
/// <para>Like spidev, a transfer longer than <see cref="MaxTransferBytes"/> fails with an <see cref="IOException"/>.</para>
/// </summary>
public sealed class SpiNorChip : SpiDevice
{
    public const long W25Q512JVCapacity = 64L << 20;
    public const uint W25Q512JVJedecId = 0xEF4020;
    public const long W25Q256JVCapacity = 32L << 20;
    public const uint W25Q256JVJedecId = 0xEF4019;

    const int PageSize = NorGeometry.PageSize, SectorSize = NorGeometry.SectorSize, BlockSize = NorGeometry.BlockSize;
    const int SfdpTableAddress = 0x80, SfdpTableDwords = 16;
    const byte StatusBusy = 0x01, StatusWel = 0x02;

    readonly object _gate = new();
    readonly byte[]?[]? _blocks; // in memory: one array per 64 KiB block, null while erased
    readonly SafeFileHandle? _file;
    readonly byte[] _sfdp;
    readonly byte[] _page = new byte[PageSize];
    readonly byte[] _erased = new byte[SectorSize];
    readonly byte[] _discard;
    readonly uint _jedecId;

    bool _wel, _fourByteMode, _resetEnabled;
    long _busyPolls; // status bytes left until ready; -1 = never (hung)

    /// <summary>A chip held in memory, erased.</summary>
    public SpiNorChip(long capacity = W25Q512JVCapacity, uint jedecId = W25Q512JVJedecId, SpiConnectionSettings? settings = null)
        : this(capacity, jedecId, settings, path: null) { }

    /// <summary>A chip whose contents live in <paramref name="path"/> (created erased if missing), so they survive between runs.</summary>
    public SpiNorChip(string path, long capacity = W25Q512JVCapacity, uint jedecId = W25Q512JVJedecId, SpiConnectionSettings? settings = null)
        : this(capacity, jedecId, settings, path ?? throw new ArgumentNullException(nameof(path))) { }

    SpiNorChip(long capacity, uint jedecId, SpiConnectionSettings? settings, string? path)
    {
        if (capacity < BlockSize || (capacity & (capacity - 1)) != 0 || capacity > (path == null ? 1L << 30 : 1L << 32))
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "an emulated SPI NOR chip is a power of two from 64 KiB to 1 GiB in memory (4 GiB in a file)");
        Capacity = capacity;
        _jedecId = jedecId & 0xFFFFFF;
        ConnectionSettings = settings ?? new SpiConnectionSettings(0, 0) { ClockFrequency = 50_000_000, Mode = SpiMode.Mode0 };
        _erased.AsSpan().Fill(0xFF);
        _discard = new byte[MaxTransferLimit];
        _sfdp = BuildSfdp(capacity);
        if (path == null)
        {
            _blocks = new byte[]?[capacity / BlockSize];
        }
        else
        {
            if (!File.Exists(path)) CreateErasedFile(path, capacity);
            _file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            long length = RandomAccess.GetLength(_file);
            if (length != capacity)
            {
                _file.Dispose();
                throw new InvalidDataException($"{path} holds {length:N0} bytes, not an emulated {capacity:N0}-byte chip; give another file name, or delete this one if it is a chip file to start afresh");
            }
        }
    }

    const int MaxTransferLimit = 1 << 16;

    public override SpiConnectionSettings ConnectionSettings { get; }
    public long Capacity { get; }
    public uint JedecId => _jedecId;

    /// <summary>The spidev buffer size (bufsiz, 4096 by default); a longer transfer throws as spidev's EMSGSIZE does.</summary>
    public int MaxTransferBytes
    {
        get => _maxTransferBytes;
        set => _maxTransferBytes = value is > 0 and <= MaxTransferLimit ? value : throw new ArgumentOutOfRangeException(nameof(value), value, $"1 to {MaxTransferLimit} bytes");
    }
    int _maxTransferBytes = Spidev.DefaultMaxTransferBytes;

    /// <summary>Status bytes a page program stays busy for.</summary>
    public int ProgramBusyPolls { get; set; } = 2;
    public int SectorEraseBusyPolls { get; set; } = 4;
    public int BlockEraseBusyPolls { get; set; } = 8;
    /// <summary>A stuck chip: the next program or erase never finishes.</summary>
    public bool Hung { get; set; }

    // Counters for tests.
    public long PagePrograms { get; private set; }
    public long SectorErases { get; private set; }
    public long BlockErases { get; private set; }
    /// <summary>Data bytes clocked out by read instructions (0x03/0x0B/0x13/0x0C).</summary>
    public long BytesRead { get; private set; }
    /// <summary>Status register bytes clocked out by 0x05.</summary>
    public long StatusReads { get; private set; }
    /// <summary>Chip-select windows.</summary>
    public long Transfers { get; private set; }

    /// <summary>Program and erase operations carried out (whole or cut), counted for power-cut tests.</summary>
    public long Operations { get; private set; }
    public bool PoweredOff { get; private set; }

    long? _cutAfter;
    bool _cutMidOperation;
    Random _cutRandom = new(0);

    /// <summary>A copy of an in-memory chip's contents (erased state and counters fresh): the same board, again (power-cut tests).</summary>
    public SpiNorChip Clone()
    {
        if (_blocks == null) throw new InvalidOperationException("only an in-memory chip can be cloned");
        var copy = new SpiNorChip(Capacity, _jedecId, ConnectionSettings);
        lock (_gate)
            for (int i = 0; i < _blocks.Length; i++) copy._blocks![i] = (byte[]?)_blocks[i]?.Clone();
        return copy;
    }

    /// <summary>Cuts the power when the operation after the first <paramref name="operations"/> starts (see the class notes).</summary>
    public void CutPowerAfter(long operations, bool midOperation, int seed)
    {
        _cutAfter = Operations + operations;
        _cutMidOperation = midOperation;
        _cutRandom = new Random(seed);
    }

    /// <summary>Power back: a power-on reset; no cut is pending.</summary>
    public void PowerOn()
    {
        lock (_gate)
        {
            PoweredOff = false;
            _cutAfter = null;
            _resetEnabled = false;
            Reset();
        }
    }

    /// <summary>True (and the power is off from now on) when the operation about to start is the one to cut.</summary>
    bool CutsNow()
    {
        if (_cutAfter is not { } at || Operations < at) { Operations++; return false; }
        Operations++;
        PoweredOff = true;
        _cutAfter = null;
        return true;
    }

    public bool IsBusy => _busyPolls != 0;
    public bool FourByteAddressMode => _fourByteMode;

    public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        if (writeBuffer.Length != readBuffer.Length)
            throw new ArgumentException("Parameters 'writeBuffer' and 'readBuffer' must have the same length.");
        Window(writeBuffer, readBuffer);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        CheckLength(buffer.Length);
        Window(buffer, _discard.AsSpan(0, buffer.Length));
    }

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>A window with MOSI low throughout: instruction 0x00, which the chip ignores.</summary>
    public override void Read(Span<byte> buffer)
    {
        CheckLength(buffer.Length);
        lock (_gate)
        {
            Transfers++;
            _resetEnabled = false;
            buffer.Fill(0xFF);
        }
    }

    public override byte ReadByte()
    {
        Span<byte> b = stackalloc byte[1];
        Read(b);
        return b[0];
    }

    void CheckLength(int length)
    {
        if (length > _maxTransferBytes)
            throw new IOException($"Error 90 performing SPI data transfer: EMSGSIZE, a {length}-byte transfer exceeds the spidev buffer of {_maxTransferBytes} bytes " +
                                  "(spidev module parameter bufsiz); split it into several transfers");
    }

    void Window(ReadOnlySpan<byte> mosi, Span<byte> miso)
    {
        CheckLength(mosi.Length);
        lock (_gate)
        {
            if (PoweredOff) throw new PowerLostException();
            Transfers++;
            miso.Fill(0xFF);
            bool resetArmed = _resetEnabled;
            _resetEnabled = false;
            if (mosi.Length == 0) return;
            byte op = mosi[0];
            if (IsBusy && op is not (0x05 or 0x66 or 0x99)) return;
            int threeOrFour = _fourByteMode ? 4 : 3;
            switch (op)
            {
                case 0x05: ReadStatus(miso); break;
                case 0x06: _wel = true; break;
                case 0x04: _wel = false; break;
                case 0x9F:
                    for (int i = 1; i < miso.Length && i <= 3; i++) miso[i] = (byte)(_jedecId >> (8 * (3 - i)));
                    break;
                case 0x5A: ReadSfdp(mosi, miso); break;
                case 0x03: ReadData(mosi, miso, threeOrFour, dummy: 0); break;
                case 0x0B: ReadData(mosi, miso, threeOrFour, dummy: 1); break;
                case 0x13: ReadData(mosi, miso, 4, dummy: 0); break;
                case 0x0C: ReadData(mosi, miso, 4, dummy: 1); break;
                case 0x02: PageProgram(mosi, threeOrFour); break;
                case 0x12: PageProgram(mosi, 4); break;
                case 0x20: Erase(mosi, threeOrFour, SectorSize); break;
                case 0x21: Erase(mosi, 4, SectorSize); break;
                case 0xD8: Erase(mosi, threeOrFour, BlockSize); break;
                case 0xDC: Erase(mosi, 4, BlockSize); break;
                case 0xB7: _fourByteMode = true; break;
                case 0xE9: _fourByteMode = false; break;
                case 0x66: _resetEnabled = true; break;
                case 0x99: if (resetArmed) Reset(); break;
                default: break; // unknown or unmodelled instruction: the chip does nothing
            }
        }
    }

    void ReadStatus(Span<byte> miso)
    {
        for (int i = 1; i < miso.Length; i++)
        {
            miso[i] = (byte)((IsBusy ? StatusBusy : 0) | (_wel ? StatusWel : 0));
            StatusReads++;
            if (_busyPolls > 0 && --_busyPolls == 0) _wel = false; // WEL clears as the program/erase completes
        }
    }

    void ReadSfdp(ReadOnlySpan<byte> mosi, Span<byte> miso)
    {
        const int header = 5; // instruction, 3-byte address (in either address mode), 8 dummy clocks
        if (mosi.Length <= header) return;
        int address = mosi[1] << 16 | mosi[2] << 8 | mosi[3];
        for (int i = header; i < miso.Length; i++, address++)
            miso[i] = address < _sfdp.Length ? _sfdp[address] : (byte)0xFF;
    }

    void ReadData(ReadOnlySpan<byte> mosi, Span<byte> miso, int addressBytes, int dummy)
    {
        int header = 1 + addressBytes + dummy;
        if (mosi.Length <= header) return;
        long address = Address(mosi, addressBytes);
        var data = miso.Slice(header);
        BytesRead += data.Length;
        while (!data.IsEmpty)
        {
            // the address counter rolls over from the last byte to 0
            int n = (int)Math.Min(data.Length, Capacity - address);
            Load(address, data.Slice(0, n));
            data = data.Slice(n);
            address = 0;
        }
    }

    void PageProgram(ReadOnlySpan<byte> mosi, int addressBytes)
    {
        int header = 1 + addressBytes;
        if (!_wel || mosi.Length <= header) return;
        long address = Address(mosi, addressBytes);
        long pageStart = address - address % PageSize;
        var data = mosi.Slice(header);
        Load(pageStart, _page);
        bool cut = CutsNow();
        // data past the page end wraps to the page start; beyond 256 bytes only the last 256 count
        int first = Math.Max(0, data.Length - PageSize);
        for (int i = first; i < data.Length; i++)
        {
            ref byte b = ref _page[(int)((address + i) % PageSize)];
            // cut: each bit the program would clear is cleared or not, at random
            b &= cut ? (byte)(data[i] | (_cutMidOperation ? _cutRandom.Next(256) : 0xFF)) : data[i];
        }
        Store(pageStart, _page);
        PagePrograms++;
        if (cut) throw new PowerLostException();
        StartBusy(ProgramBusyPolls);
    }

    void Erase(ReadOnlySpan<byte> mosi, int addressBytes, int size)
    {
        if (!_wel || mosi.Length != 1 + addressBytes) return;
        long address = Address(mosi, addressBytes);
        long start = address - address % size;
        if (CutsNow())
        {
            // cut: a random mix of erased and old bytes
            if (_cutMidOperation)
            {
                var old = new byte[size];
                Load(start, old);
                for (int i = 0; i < size; i++) if (_cutRandom.Next(2) == 0) old[i] = 0xFF;
                Store(start, old);
            }
            throw new PowerLostException();
        }
        EraseRange(start, size);
        if (size == SectorSize) SectorErases++; else BlockErases++;
        StartBusy(size == SectorSize ? SectorEraseBusyPolls : BlockEraseBusyPolls);
    }

    void StartBusy(int polls)
    {
        if (Hung) _busyPolls = -1;
        else if (polls > 0) _busyPolls = polls;
        else _wel = false;
    }

    void Reset()
    {
        _wel = false;
        _fourByteMode = false; // power-on default: 3-byte addresses
        _busyPolls = 0;
    }

    /// <summary>Big-endian address; bits above the chip size are ignored, as the chip does.</summary>
    long Address(ReadOnlySpan<byte> mosi, int addressBytes)
    {
        long address = 0;
        for (int i = 1; i <= addressBytes; i++) address = address << 8 | mosi[i];
        return address & (Capacity - 1);
    }

    // Backing store: callers never cross the end of the chip.
    void Load(long address, Span<byte> destination)
    {
        if (_blocks == null)
        {
            int done = 0;
            while (done < destination.Length)
            {
                int n = RandomAccess.Read(_file!, destination.Slice(done), address + done);
                if (n == 0) throw new IOException("the emulated chip's backing file ended early");
                done += n;
            }
            return;
        }
        while (!destination.IsEmpty)
        {
            int within = (int)(address % BlockSize), n = Math.Min(destination.Length, BlockSize - within);
            var block = _blocks[address / BlockSize];
            if (block == null) destination.Slice(0, n).Fill(0xFF);
            else block.AsSpan(within, n).CopyTo(destination);
            destination = destination.Slice(n);
            address += n;
        }
    }

    void Store(long address, ReadOnlySpan<byte> source)
    {
        if (_blocks == null) { RandomAccess.Write(_file!, source, address); return; }
        while (!source.IsEmpty)
        {
            int within = (int)(address % BlockSize), n = Math.Min(source.Length, BlockSize - within);
            ref var block = ref _blocks[address / BlockSize];
            if (block == null)
            {
                block = GC.AllocateUninitializedArray<byte>(BlockSize);
                block.AsSpan().Fill(0xFF);
            }
            source.Slice(0, n).CopyTo(block.AsSpan(within, n));
            source = source.Slice(n);
            address += n;
        }
    }

    void EraseRange(long start, int size)
    {
        if (_blocks != null && size == BlockSize) _blocks[start / BlockSize] = null;
        else for (long a = start; a < start + size; a += SectorSize) Store(a, _erased);
    }

    static void CreateErasedFile(string path, long capacity)
    {
        // fill a temporary file and rename it, so a half-written file never looks like a chip
        string temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var ones = new byte[1 << 16];
                ones.AsSpan().Fill(0xFF);
                for (long done = 0; done < capacity; done += ones.Length) stream.Write(ones, 0, (int)Math.Min(ones.Length, capacity - done));
            }
            File.Move(temp, path);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>
    /// SFDP space (JESD216B): the 8-byte header ("SFDP", revision 1.6, one parameter header, protocol
    /// 0xFF), the basic flash parameter table's header (ID 0xFF00, revision 1.6, 16 DWORDs at 0x80), and
    /// at 0x80 the table: DWORD 1 (4 KiB erase 0x20, 3- or 4-byte addressing), DWORD 2 the density,
    /// DWORDs 8/9 the erase types (4 KiB 0x20, 32 KiB 0x52, 64 KiB 0xD8), DWORD 11 the 256-byte page;
    /// the fast-read and timing DWORDs hold plausible W25Q-like values that nothing here uses; unused space reads 0xFF.
    /// </summary>
    static byte[] BuildSfdp(long capacity)
    {
        var s = new byte[SfdpTableAddress + 4 * SfdpTableDwords];
        s.AsSpan().Fill(0xFF);
        "SFDP"u8.CopyTo(s);
        s[4] = 0x06; s[5] = 0x01; // revision 1.6
        s[6] = 0x00;               // number of parameter headers - 1
        s[7] = 0xFF;               // access protocol: legacy SPI
        s[8] = 0x00; s[9] = 0x06; s[10] = 0x01; s[11] = SfdpTableDwords;
        s[12] = SfdpTableAddress & 0xFF; s[13] = 0; s[14] = 0;
        s[15] = 0xFF;              // ID MSB: JEDEC basic table
        long bits = capacity * 8;
        uint density = bits <= 1L << 31 ? (uint)(bits - 1) : 0x8000_0000u | (uint)Math.Log2(bits);
        uint[] bfpt =
        [
            0xFFF320E5, density, 0x6B08EB44, 0x3B42BB42, 0xFFFFFFEE, 0xFF00FFFF, 0xFF00FFFF, 0x520F200C,
            0xFF00D810, 0x00A60236, 0xEA14C48A, 0x68F6E833, 0x5A7A7A00, 0xFF00FFFF, 0xFF00FFFF, 0xFF00FFFF,
        ];
        for (int i = 0; i < bfpt.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(SfdpTableAddress + 4 * i), bfpt[i]);
        return s;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _file?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>The emulated chip lost its power (<see cref="SpiNorChip.CutPowerAfter"/>): nothing more reaches it until it is powered on.</summary>
public sealed class PowerLostException() : IOException("the emulated SPI NOR chip lost power");
