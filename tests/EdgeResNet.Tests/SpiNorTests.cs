using System.Device.Spi;
using EdgeResNet.Common;
using EdgeResNet.Drivers.Emulation;
using EdgeResNet.Flashing.Emulation;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class SpiNorTests
{
    const long MiB = 1L << 20;

    /// <summary>One chip-select window on the emulated chip: the bytes MISO carried back.</summary>
    static byte[] Raw(SpiNorChip chip, params byte[] mosi)
    {
        var miso = new byte[mosi.Length];
        chip.TransferFullDuplex(mosi, miso);
        return miso;
    }

    static byte Status(SpiNorChip chip) => Raw(chip, 0x05, 0)[1];

    static void WaitReady(SpiNorChip chip)
    {
        for (int i = 0; i < 1000 && (Status(chip) & 1) != 0; i++) { }
        Assert.IsFalse(chip.IsBusy);
    }

    static byte[] RawRead4(SpiNorChip chip, long address, int n)
    {
        var mosi = new byte[5 + n];
        mosi[0] = 0x13;
        for (int i = 0; i < 4; i++) mosi[1 + i] = (byte)(address >> (24 - 8 * i));
        return Raw(chip, mosi)[5..];
    }

    static byte[] Random(int n, int seed)
    {
        var bytes = new byte[n];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [TestMethod]
    public void JedecIdAndSfdpGiveTheSize()
    {
        var w512 = new SpiNorFlash(new SpiNorChip());
        Assert.AreEqual(0xEF4020u, w512.JedecId);
        Assert.AreEqual(64 * MiB, w512.Capacity);
        Assert.AreEqual(64 * MiB, w512.Length);
        Assert.AreEqual(4, w512.AddressBytes);
        Assert.AreEqual("Winbond W25Q512JV, 64 MiB", w512.Describe());

        var w256 = new SpiNorFlash(new SpiNorChip(SpiNorChip.W25Q256JVCapacity, SpiNorChip.W25Q256JVJedecId));
        Assert.AreEqual("Winbond W25Q256JV, 32 MiB", w256.Describe());
        Assert.AreEqual(4, w256.AddressBytes);

        // a small chip of an unknown type: the size is SFDP's alone, and it uses 3-byte instructions
        var small = new SpiNorFlash(new SpiNorChip(1 * MiB, 0xEF40AA));
        Assert.AreEqual(1 * MiB, small.Capacity);
        Assert.AreEqual(3, small.AddressBytes);
        Assert.AreEqual("Winbond, JEDEC ID EF40AA, 1 MiB", small.Describe());

        // both density encodings of BFPT DWORD 2
        Assert.AreEqual(64 * MiB, Sfdp.DensityBytes(0x1FFF_FFFF));
        Assert.AreEqual(1L << 30, Sfdp.DensityBytes(0x8000_0021)); // 2^33 bits
        Assert.ThrowsExactly<DeviceException>(() => Sfdp.DensityBytes(0x8000_007F));
    }

    [TestMethod]
    [DataRow(64 * MiB, false, 4096)]
    [DataRow(64 * MiB, true, 4096)]
    [DataRow(1 * MiB, false, 4096)]  // 3-byte instructions
    [DataRow(1 * MiB, true, 100)]    // small transfers: programs split inside pages too
    public void ProgramAndReadRoundTripAcrossPagesAndSectors(long capacity, bool fastRead, int maxTransfer)
    {
        var chip = new SpiNorChip(capacity, 0xEF4020) { MaxTransferBytes = maxTransfer };
        var flash = new SpiNorFlash(chip, maxTransfer) { FastRead = fastRead };
        long baseAddress = capacity / 2 - 0x3000;          // three sectors below the middle: crosses a block boundary
        long offset = baseAddress + 0x1F3;                  // unaligned
        var data = Random(3 * SpiNorFlash.SectorSize + 777, 7);
        flash.Erase(baseAddress, 4 * SpiNorFlash.SectorSize);
        flash.Program(offset, data);

        var back = new byte[data.Length];
        flash.Read(offset, back);
        CollectionAssert.AreEqual(data, back);
        // unaligned pieces, one crossing the page and sector boundary
        var piece = new byte[300];
        long pieceAt = baseAddress + SpiNorFlash.SectorSize - 150;
        flash.Read(pieceAt, piece);
        CollectionAssert.AreEqual(data.AsSpan((int)(pieceAt - offset), 300).ToArray(), piece);
        // around the data: still erased
        var edges = new byte[0x1F3];
        flash.Read(baseAddress, edges);
        Assert.IsTrue(edges.All(b => b == 0xFF));

        // pages touched: the first partial page, the full ones, the last partial one (more when transfers are small)
        long pages = (offset + data.Length - 1) / 256 - offset / 256 + 1;
        if (maxTransfer >= 256 + 5) Assert.AreEqual(pages, chip.PagePrograms);
        else Assert.IsTrue(chip.PagePrograms > pages);

        // long reads are split into transfers the spidev buffer holds
        long commands = flash.ReadCommands, bytes = flash.BytesRead;
        var big = new byte[10_000];
        flash.Read(0, big);
        int header = 1 + flash.AddressBytes + (fastRead ? 1 : 0);
        Assert.AreEqual((10_000 + maxTransfer - header - 1) / (maxTransfer - header), flash.ReadCommands - commands);
        Assert.AreEqual(10_000, flash.BytesRead - bytes);
    }

    [TestMethod]
    public void EraseUsesBlocksWherePossibleAndOnlyWhatIsAsked()
    {
        var chip = new SpiNorChip(4 * MiB, 0xEF4016);
        var flash = new SpiNorFlash(chip);
        var zeros = new byte[0x50000];
        flash.Program(0, zeros);

        // one sector below a block boundary, two whole blocks, two sectors of the next block
        long start = 0xF000, length = 0x1000 + 0x20000 + 0x2000;
        flash.Erase(start, length);
        Assert.AreEqual(2, chip.BlockErases);
        Assert.AreEqual(3, chip.SectorErases);

        var all = new byte[zeros.Length];
        flash.Read(0, all);
        for (int i = 0; i < all.Length; i++)
        {
            bool inside = i >= start && i < start + length;
            if (all[i] != (inside ? 0xFF : 0x00)) Assert.Fail($"byte 0x{i:X} is 0x{all[i]:X2} after erasing [0x{start:X}, 0x{start + length:X})");
        }

        Assert.ThrowsExactly<ArgumentException>(() => flash.Erase(0x100, 0x1000));
        Assert.ThrowsExactly<ArgumentException>(() => flash.Erase(0x1000, 0x800));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => flash.Erase(4 * MiB - 0x1000, 0x2000));
    }

    [TestMethod]
    public void ProgrammingOnlyClearsBits()
    {
        var chip = new SpiNorChip(1 * MiB, 0xEF4014);
        var flash = new SpiNorFlash(chip);
        flash.Program(0x10, [0xF0, 0xFF]);
        flash.Program(0x10, [0x3C, 0x0F]);
        var b = new byte[2];
        flash.Read(0x10, b);
        CollectionAssert.AreEqual(new byte[] { 0x30, 0x0F }, b);
        flash.Erase(0, 0x1000);
        flash.Read(0x10, b);
        CollectionAssert.AreEqual(new byte[] { 0xFF, 0xFF }, b);
    }

    [TestMethod]
    public void PageProgramWrapsWithinItsPage()
    {
        var chip = new SpiNorChip();
        // 10 bytes from 6 before the end of page 0x1200: the last 4 land at the page start
        Raw(chip, 0x06);
        Raw(chip, [0x12, 0x00, 0x00, 0x12, 0xFA, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        WaitReady(chip);
        var page = RawRead4(chip, 0x1200, 256);
        CollectionAssert.AreEqual(new byte[] { 6, 7, 8, 9, 0xFF }, page[..5]);
        CollectionAssert.AreEqual(new byte[] { 0xFF, 0, 1, 2, 3, 4, 5 }, page[249..]);
        Assert.AreEqual(0xFF, RawRead4(chip, 0x1300, 1)[0], "the next page is untouched");

        // more than 256 bytes: the address wraps and the last 256 win
        Raw(chip, 0x06);
        var mosi = new byte[5 + 300];
        mosi[0] = 0x12; mosi[3] = 0x20; // page 0x2000
        for (int i = 0; i < 300; i++) mosi[5 + i] = (byte)(i < 44 ? 0x00 : 0xFF - (i % 256 == 0 ? 1 : 0));
        Raw(chip, mosi);
        WaitReady(chip);
        Assert.IsTrue(RawRead4(chip, 0x2000, 256).All(b => b is 0xFF or 0xFE), "the first 44 bytes were overwritten by the wrap");
        Assert.AreEqual(0xFE, RawRead4(chip, 0x2000, 1)[0], "byte 256 landed on the page start");
        Assert.AreEqual(2, chip.PagePrograms);
    }

    [TestMethod]
    public void WriteEnableLatchGuardsProgramAndErase()
    {
        var chip = new SpiNorChip() { ProgramBusyPolls = 3 };
        byte[] program = [0x12, 0, 0, 0, 0, 0x00];
        Raw(chip, program);
        Assert.AreEqual(0xFF, RawRead4(chip, 0, 1)[0], "program without WEL is ignored");
        Assert.AreEqual(0, chip.PagePrograms);

        Raw(chip, 0x06);
        Assert.AreEqual(0x02, Status(chip), "0x06 sets WEL");
        Raw(chip, 0x04);
        Assert.AreEqual(0x00, Status(chip), "0x04 clears WEL");

        Raw(chip, 0x06);
        Raw(chip, program);
        Assert.AreEqual(0xFF, RawRead4(chip, 0, 1)[0], "a read while busy is ignored (MISO stays high)");
        Assert.AreEqual(0x03, Status(chip), "busy, WEL still set");
        Raw(chip, 0x06);
        Assert.AreEqual(0x03, Raw(chip, 0x05, 0, 0)[2], "busy for 3 status bytes");
        Assert.AreEqual(0x00, Status(chip), "done: WEL cleared");
        Assert.AreEqual(0x00, RawRead4(chip, 0, 1)[0]);

        Raw(chip, [0x21, 0, 0, 0, 0]);
        Assert.AreEqual(0, chip.SectorErases, "erase without WEL is ignored");
        Raw(chip, 0x06);
        Raw(chip, [0x21, 0, 0, 0, 0, 0]);
        Assert.AreEqual(0, chip.SectorErases, "an erase window longer than instruction + address is ignored");
        Raw(chip, [0x21, 0, 0, 0, 0]);
        Assert.AreEqual(1, chip.SectorErases);
    }

    [TestMethod]
    public void DriverPollsTheBusyChip()
    {
        var chip = new SpiNorChip() { ProgramBusyPolls = 5, SectorEraseBusyPolls = 7 };
        var flash = new SpiNorFlash(chip);
        long polls = chip.StatusReads;
        flash.Program(0x100, [1, 2, 3]);
        Assert.AreEqual(1 + 5 + 1, chip.StatusReads - polls, "one WEL check, five busy polls, one ready");
        Assert.IsFalse(chip.IsBusy);
        polls = chip.StatusReads;
        flash.Erase(0, 0x1000);
        Assert.AreEqual(1 + 7 + 1, chip.StatusReads - polls);
        var b = new byte[3];
        flash.Read(0x100, b);
        CollectionAssert.AreEqual(new byte[] { 0xFF, 0xFF, 0xFF }, b);
    }

    [TestMethod]
    public void FourByteModeAndResetAffectTheThreeByteInstructions()
    {
        var chip = new SpiNorChip(SpiNorChip.W25Q256JVCapacity, SpiNorChip.W25Q256JVJedecId);
        var flash = new SpiNorFlash(chip);
        flash.Program(0x0100_0010, [0xAB]);   // above 16 MiB, through the 4-byte instructions
        flash.Program(0x0000_0010, [0xCD]);

        Assert.AreEqual(0xCD, Raw(chip, 0x03, 0x00, 0x00, 0x10, 0)[4], "3-byte mode: 0x03 takes 3 address bytes");
        Raw(chip, 0xB7);
        Assert.IsTrue(chip.FourByteAddressMode);
        Assert.AreEqual(0xAB, Raw(chip, 0x03, 0x01, 0x00, 0x00, 0x10, 0)[5], "4-byte mode: 0x03 takes 4");
        Assert.AreEqual(0xAB, Raw(chip, 0x0B, 0x01, 0x00, 0x00, 0x10, 0, 0)[6], "and 0x0B too, with its dummy byte");
        Raw(chip, 0xE9);
        Assert.AreEqual(0xCD, Raw(chip, 0x03, 0x00, 0x00, 0x10, 0)[4]);

        // the driver does not care which mode the chip was left in
        Raw(chip, 0xB7);
        var b = new byte[1];
        flash.Read(0x0100_0010, b);
        Assert.AreEqual(0xAB, b[0]);

        // reset: 0x99 alone does nothing; 0x66 then 0x99 restores 3-byte mode and clears WEL
        Raw(chip, 0x06);
        Raw(chip, 0x99);
        Assert.IsTrue(chip.FourByteAddressMode);
        Raw(chip, 0x66);
        Raw(chip, 0x99);
        Assert.IsFalse(chip.FourByteAddressMode);
        Assert.AreEqual(0x00, Status(chip));
    }

    [TestMethod]
    public void AStuckChipIsATimeoutError()
    {
        var chip = new SpiNorChip() { Hung = true };
        var flash = new SpiNorFlash(chip) { ProgramTimeout = TimeSpan.FromMilliseconds(20), SectorEraseTimeout = TimeSpan.FromMilliseconds(30) };
        var e = Assert.ThrowsExactly<DeviceException>(() => flash.Program(0x1234, [0]));
        StringAssert.Contains(e.Message, "page program at 0x1234");
        StringAssert.Contains(e.Message, "20 ms timeout");

        var chip2 = new SpiNorChip(1 * MiB, 0xEF4014) { Hung = true };
        var flash2 = new SpiNorFlash(chip2) { SectorEraseTimeout = TimeSpan.FromMilliseconds(30) };
        e = Assert.ThrowsExactly<DeviceException>(() => flash2.Erase(0x1000, 0x1000));
        StringAssert.Contains(e.Message, "4 KiB sector erase at 0x1000");
        StringAssert.Contains(e.Message, "30 ms timeout");
        // while busy, write enable is ignored: the next write fails clearly instead of losing data
        e = Assert.ThrowsExactly<DeviceException>(() => flash2.Program(0, [0]));
        StringAssert.Contains(e.Message, "still busy with an earlier program or erase");
    }

    /// <summary>An SPI bus with nothing (or something odd) on it: answers 0x9F with fixed bytes, MISO high otherwise.</summary>
    sealed class FixedBus(byte[] jedec, byte idle) : SpiDevice
    {
        public override SpiConnectionSettings ConnectionSettings { get; } = new(1, 0);
        public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
        {
            readBuffer.Fill(idle);
            if (writeBuffer[0] == 0x9F)
                for (int i = 1; i < readBuffer.Length && i <= 3; i++) readBuffer[i] = jedec[i - 1];
        }
        public override void Write(ReadOnlySpan<byte> buffer) { }
        public override void WriteByte(byte value) { }
        public override void Read(Span<byte> buffer) => buffer.Fill(idle);
        public override byte ReadByte() => idle;
    }

    [TestMethod]
    [DataRow((byte)0x00)]
    [DataRow((byte)0xFF)]
    public void NoChipIsAClearError(byte line)
    {
        var e = Assert.ThrowsExactly<DeviceException>(() => new SpiNorFlash(new FixedBus([line, line, line], line)));
        StringAssert.Contains(e.Message, "no chip answers on SPI bus 1 CS 0");
        StringAssert.Contains(e.Message, "check wiring/chip select");
    }

    [TestMethod]
    public void AnUnknownChipWithoutSfdpIsAClearError()
    {
        var e = Assert.ThrowsExactly<DeviceException>(() => new SpiNorFlash(new FixedBus([0x12, 0x34, 0x56], 0xFF)));
        StringAssert.Contains(e.Message, "no SFDP table and is not a known part");
        // a known part without SFDP gets its size from the part table
        Assert.AreEqual(64 * MiB, new SpiNorFlash(new FixedBus([0xEF, 0x40, 0x20], 0xFF)).Capacity);
    }

    [TestMethod]
    public void TheChipEnforcesTheSpidevTransferLimit()
    {
        var chip = new SpiNorChip(1 * MiB, 0xEF4014);
        var e = Assert.ThrowsExactly<IOException>(() => chip.TransferFullDuplex(new byte[4097], new byte[4097]));
        StringAssert.Contains(e.Message, "4097-byte transfer exceeds the spidev buffer of 4096 bytes");
        var tooBig = new SpiNorFlash(chip, maxTransferBytes: 8192);
        Assert.ThrowsExactly<IOException>(() => tooBig.Read(0, new byte[5000]));
    }

    [TestMethod]
    public void RegionsAreWindowsOntoTheChip()
    {
        var flash = new SpiNorFlash(new SpiNorChip(1 * MiB, 0xEF4014));
        var slot = flash.Region(0x40000, 0x20000);
        flash.Erase(0x40000, 0x1000);
        flash.Program(0x40010, [0x42]);
        var b = new byte[1];
        slot.Read(0x10, b);
        Assert.AreEqual(0x42, b[0]);
        Assert.ThrowsExactly<FlashImageException>(() => slot.Read(0x1FFFF, new byte[2]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => flash.Region(0xF0000, 0x20000));
    }

    [TestMethod]
    public void AFileBackedChipKeepsItsContents()
    {
        string path = Path.Combine(Path.GetTempPath(), $"spinor-{Guid.NewGuid():N}.bin");
        try
        {
            using (var chip = new SpiNorChip(path, 1 * MiB, 0xEF4014))
                new SpiNorFlash(chip).Program(0x12345, [1, 2, 3]);
            Assert.AreEqual(1 * MiB, new FileInfo(path).Length);
            using (var chip = new SpiNorChip(path, 1 * MiB, 0xEF4014))
            {
                var b = new byte[5];
                new SpiNorFlash(chip).Read(0x12344, b);
                CollectionAssert.AreEqual(new byte[] { 0xFF, 1, 2, 3, 0xFF }, b);
            }
            Assert.ThrowsExactly<InvalidDataException>(() => new SpiNorChip(path, 2 * MiB, 0xEF4015));
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void TheRuntimeClassifiesFromTheChipBitExact()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions(10, 16, BnScheme.Separate));
        var chip = new SpiNorChip();
        var flash = new SpiNorFlash(chip);
        long offset = 0x0234_1000; // above 32 MiB, sector- but not block-aligned
        flash.Erase(offset, (bytes.Length + SpiNorFlash.SectorSize - 1) / SpiNorFlash.SectorSize * SpiNorFlash.SectorSize);
        flash.Program(offset, bytes);

        var fromChip = new InferenceEngine(FlashImage.Open(flash.Region(offset, bytes.Length)));
        var counting = new CountingFlash(new MemoryFlash(bytes));
        var fromMemory = new InferenceEngine(FlashImage.Open(counting));
        foreach (var x in inputs)
        {
            var q = Quantizer.QuantizeInput(x, model);
            long chipBefore = flash.BytesRead, memoryBefore = counting.BytesRead, chipDataBefore = chip.BytesRead;
            var expected = fromMemory.Run(q);
            var logits = fromChip.Run(q);
            CollectionAssert.AreEqual(expected, logits);
            Assert.AreEqual(counting.BytesRead - memoryBefore, flash.BytesRead - chipBefore, "bytes read per frame");
            Assert.AreEqual(flash.BytesRead - chipBefore, chip.BytesRead - chipDataBefore, "the chip clocked out what the driver counted");
        }

        // streaming from the chip allocates nothing per frame either
        var input = Quantizer.QuantizeInput(inputs[0], model);
        long before = GC.GetAllocatedBytesForCurrentThread();
        fromChip.Run(input);
        Assert.AreEqual(0L, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [TestMethod]
    public void AUsbAdapterProgramsTheChipThroughTheSameDriverAndFailsCleanlyWithoutOne()
    {
        // The adapter's SPI device is where the emulated chip sits: what flash --spi ft232h:1 writes goes through
        // UsbSpiAdapters, SpiNorFlash and the sector writer exactly as on the adapter.
        var chip = new SpiNorChip(16L << 20, 0xEF4018) { SectorEraseBusyPolls = 0, BlockEraseBusyPolls = 0 };
        SpiConnectionSettings? asked = null;
        using (var nor = UsbSpiAdapters.Open("ft232h:1", (kind, index, settings) =>
        {
            Assert.AreEqual(("ft232h", 1), (kind, index));
            asked = settings;
            return chip;
        }))
        {
            StringAssert.Contains(nor.Description, "ft232h adapter #1");
            var image = RuntimeTests.MiniPacked(new QuantOptions()).Image;
            EdgeResNet.Flashing.Loader.SectorWriter.WriteImage(nor.Flash, 0, image);
            var back = new byte[image.Length];
            nor.Flash.Read(0, back);
            CollectionAssert.AreEqual(image, back);
        }
        Assert.AreEqual(SpiMode.Mode0, asked!.Mode);
        Assert.AreEqual(3, asked.ChipSelectLine, "FT232H: chip select on D3");
        Assert.AreEqual(0, UsbSpiAdapters.ChipSelect("ft4222"));
        Assert.AreEqual(1, ExitCodes.Classify(Assert.ThrowsExactly<UsageException>(() => UsbSpiAdapters.Parse("ft232h:x"))));
        Assert.AreEqual(1, ExitCodes.Classify(Assert.ThrowsExactly<UsageException>(() => UsbSpiAdapters.Parse("ft2232"))));
        // This machine has no adapter (and no FTDI library): one clear line and exit 5, for both kinds.
        foreach (var spec in new[] { "ft232h", "ft4222:2" })
        {
            var e = Assert.ThrowsExactly<DeviceException>(() => UsbSpiAdapters.Open(spec));
            Assert.AreEqual(ExitCodes.Device, ExitCodes.Classify(e));
            StringAssert.Contains(e.Message, spec[..6]);
            Assert.IsFalse(e.Message.Contains('\n'), e.Message);
        }
    }
}
