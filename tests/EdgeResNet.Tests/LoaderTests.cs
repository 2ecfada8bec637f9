using EdgeResNet.Flashing.Emulation;
using EdgeResNet.Common;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Flashing.Storage;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class LoaderTests
{
    // Two different small images of ResNet-50's shape (different seeds), packed once for all tests.
    static readonly Lazy<byte[]> Image1 = new(() => RuntimeTests.MiniPacked(new QuantOptions(), 3).Image);
    static readonly Lazy<byte[]> Image2 = new(() => RuntimeTests.MiniPacked(new QuantOptions(), 4).Image);

    /// <summary>A flash with two slots that each hold the mini images, and a little room to spare.</summary>
    static MemoryStorage FlashFor(byte[] image) => new(2 * ((image.Length + SlotStore.RecordSectorSize + 65535) / 65536 * 65536 + 65536));

    // 1 s timeouts: a loaded CI machine must not exhaust the retries. 8 KiB QUERY blocks: the mini images are only two 64 KiB blocks long, too few to see a resume.
    static LoaderClient Client(Stream link) => new(link) { Timeout = TimeSpan.FromSeconds(1), LongTimeout = TimeSpan.FromSeconds(20), BlockSize = 8192 };

    /// <summary>One loader session: a board (server thread) and a host over an in-memory serial link.</summary>
    static LoaderResult Transfer(MemoryStorage flash, byte[] image, Action<PipeEnd, PipeEnd>? tweak = null)
    {
        var (host, board) = PipeEnd.Pair();
        tweak?.Invoke(host, board);
        var server = new LoaderServer(new SlotStore(flash), board);
        var run = Task.Run(server.Run);
        try { return Client(host).Flash(image); }
        finally
        {
            host.Dispose(); // the board sees the link close and returns
            Assert.IsTrue(run.Wait(TimeSpan.FromSeconds(20)), "the board loop did not end when the link closed");
        }
    }

    static void AssertBoots(MemoryStorage flash, byte[] image, char slot, uint generation)
    {
        var boot = new SlotStore(flash).Boot();
        Assert.AreEqual(slot, boot.Slot);
        Assert.AreEqual(generation, boot.Generation);
        var back = new byte[boot.Region.Length];
        boot.Region.Read(0, back);
        CollectionAssert.AreEqual(image, back, "the booted image is not bit-identical to the one sent");
    }

    /// <summary>Writes an image straight through the store (no link).</summary>
    static uint Store(SlotStore store, byte[] image)
    {
        store.BeginWrite(image.Length, Crc32.Append(0, image));
        for (int o = 0; o < image.Length; o += 4096) store.WriteData(o, image.AsSpan(o, Math.Min(4096, image.Length - o)));
        return store.Commit();
    }

    // ---- SectorWriter ----

    [TestMethod]
    public void SectorWriterErasesOnlyWhenABitMustBeSet()
    {
        var flash = new MemoryStorage(64 * 1024);
        var w = new SectorWriter(flash);
        var rng = new Random(1);
        var data = new byte[4096];
        rng.NextBytes(data);

        Assert.AreEqual(SectorAction.Programmed, w.WriteSector(4096, data), "erased flash: program only");
        Assert.AreEqual((0, 16), (flash.Erases, flash.Programs));
        Assert.AreEqual(SectorAction.Skipped, w.WriteSector(4096, data), "identical: nothing");
        Assert.AreEqual((0, 16), (flash.Erases, flash.Programs));

        var cleared = (byte[])data.Clone();
        cleared[300] &= 0x0F; cleared[4000] = 0; // pages 1 and 15 lose bits
        if (cleared[300] == data[300] || cleared[4000] == data[4000]) Assert.Inconclusive("the random bytes already had those bits clear");
        Assert.AreEqual(SectorAction.Programmed, w.WriteSector(4096, cleared), "only clears bits: no erase");
        Assert.AreEqual((0, 18), (flash.Erases, flash.Programs), "only the two changed pages are programmed");

        Assert.AreEqual(SectorAction.Erased, w.WriteSector(4096, data), "sets bits again: erase");
        Assert.AreEqual(1, flash.Erases);
        CollectionAssert.AreEqual(data, flash.Bytes.AsSpan(4096, 4096).ToArray());

        Assert.AreEqual(SectorAction.Erased, w.WriteSector(4096, data.AsSpan(0, 100)), "a partial sector is padded with 0xFF");
        Assert.IsTrue(flash.Bytes.AsSpan(4096 + 100, 4096 - 100).IndexOfAnyExcept((byte)0xFF) < 0);
        Assert.AreEqual(new SectorCounts(1, 2, 2), w.Counts);
        Assert.IsTrue(flash.Bytes.AsSpan(0, 4096).IndexOfAnyExcept((byte)0xFF) < 0 && flash.Bytes.AsSpan(8192).IndexOfAnyExcept((byte)0xFF) < 0, "neighbouring sectors untouched");
        Assert.ThrowsExactly<ArgumentException>(() => w.WriteSector(100, data));
    }

    [TestMethod]
    public void WriteAndVerifyResumesAfterAnInterruption()
    {
        var flash = new MemoryStorage(128 * 1024);
        var data = new byte[5 * 4096 + 1000]; // a partial last sector
        new Random(2).NextBytes(data);
        var progress = new ListProgress<WriteProgress>();
        var first = SectorWriter.WriteAndVerify(flash, 8192, new MemoryStream(data), data.Length, progress);
        Assert.AreEqual(new SectorCounts(0, 6, 0), first);
        Assert.AreEqual(data.Length, progress.Items[^1].BytesDone);
        CollectionAssert.AreEqual(data, flash.Bytes.AsSpan(8192, data.Length).ToArray());

        // A power cut: sector 2 erased but not programmed, sector 4 half programmed over old data.
        flash.Bytes.AsSpan(8192 + 2 * 4096, 4096).Fill(0xFF);
        flash.Bytes.AsSpan(8192 + 4 * 4096 + 2048, 2048).Fill(0x00);
        var again = SectorWriter.WriteAndVerify(flash, 8192, new MemoryFlash(data), data.Length);
        Assert.AreEqual(new SectorCounts(4, 1, 1), again, "only the two damaged sectors are written again");
        CollectionAssert.AreEqual(data, flash.Bytes.AsSpan(8192, data.Length).ToArray());
    }

    [TestMethod]
    public void WriteAndVerifyReportsFlashThatDoesNotTakeTheData()
    {
        var flash = new MemoryStorage(64 * 1024) { IgnorePrograms = true };
        var e = Assert.ThrowsExactly<DeviceException>(() => SectorWriter.WriteAndVerify(flash, 0, new MemoryFlash(new byte[4096]), 4096));
        StringAssert.Contains(e.Message, "verify failed at 0x0");
        Assert.ThrowsExactly<DeviceException>(() => SectorWriter.WriteAndVerify(new MemoryStorage(64 * 1024), 0, new MemoryStream(new byte[10]), 4096));
    }

    // ---- SlotStore ----

    [TestMethod]
    public void EmptyFlashHasNoBootableImageAndSaysWhatToDo()
    {
        var store = new SlotStore(new MemoryStorage(1 << 20));
        Assert.AreEqual(512 * 1024, store.SlotSize);
        var e = Assert.ThrowsExactly<FlashImageException>(() => store.Boot());
        Assert.AreEqual("no bootable image in slot A or B: A: empty; B: empty — flash one with `edgeresnet flash`", e.Message);
        CollectionAssert.AreEqual(new[] { "slot A: empty", "slot B: empty" }, store.Describe().ToArray());
        Assert.AreEqual(512 * 1024, new SlotStore(new MemoryStorage((1 << 20) + 4096 * 30)).SlotSize, "slot size rounds down to 64 KiB: (1 MiB + 120 KiB) / 2 -> 512 KiB");
    }

    [TestMethod]
    public void SlotsAlternateAndTheNewestGenerationBoots()
    {
        byte[] a = Image1.Value, b = Image2.Value;
        var flash = FlashFor(a.Length > b.Length ? a : b);
        var store = new SlotStore(flash);
        Assert.AreEqual(1u, Store(store, a));
        AssertBoots(flash, a, 'A', 1);

        var slotA = flash.Bytes.AsSpan(0, (int)store.SlotSize).ToArray();
        Assert.AreEqual('B', store.BeginWrite(b.Length, Crc32.Append(0, b)));
        CollectionAssert.AreEqual(slotA, flash.Bytes.AsSpan(0, (int)store.SlotSize).ToArray(), "BEGIN must not touch the boot slot");
        for (int o = 0; o < b.Length; o += 4096) store.WriteData(o, b.AsSpan(o, Math.Min(4096, b.Length - o)));
        Assert.AreEqual(2u, store.Commit());
        Assert.AreEqual(2u, store.Commit(), "a repeated COMMIT answers the same generation");
        CollectionAssert.AreEqual(slotA, flash.Bytes.AsSpan(0, (int)store.SlotSize).ToArray(), "writing B never touched A");
        AssertBoots(flash, b, 'B', 2);
        Assert.ThrowsExactly<LoaderException>(() => store.WriteData(0, b.AsSpan(0, 4096)), "no writes into a committed (booting) slot");

        Assert.AreEqual(3u, Store(new SlotStore(flash), a));
        AssertBoots(flash, a, 'A', 3);
        var lines = new SlotStore(flash).Describe();
        StringAssert.StartsWith(lines[0], $"slot A: generation 3, {a.Length:N0} bytes, CRC {Crc32.Append(0, a):x8}, bootable, boots");
        StringAssert.StartsWith(lines[1], "slot B: generation 2");
    }

    [TestMethod]
    public void AnImageTooBigForASlotIsRefusedClearly()
    {
        var store = new SlotStore(new MemoryStorage(256 * 1024));
        var e = Assert.ThrowsExactly<LoaderException>(() => store.BeginWrite(store.MaxImageLength + 1, 0));
        Assert.AreEqual(LoaderError.TooLarge, e.Code);
        StringAssert.Contains(e.Message, $"a slot holds at most {124 * 1024:N0}");
        Assert.ThrowsExactly<LoaderException>(() => store.WriteData(0, new byte[10]), "no DATA before BEGIN");
    }

    [TestMethod]
    public void AnIncompleteImageIsNotCommittedAndThePreviousOneStillBoots()
    {
        var img = Image1.Value;
        var flash = FlashFor(img);
        Store(new SlotStore(flash), img);
        var store = new SlotStore(flash);
        store.BeginWrite(img.Length, Crc32.Append(0, img));
        for (int o = 0; o < img.Length; o += 4096)
            if (o != 8192) store.WriteData(o, img.AsSpan(o, Math.Min(4096, img.Length - o)));
        var e = Assert.ThrowsExactly<LoaderException>(() => store.Commit());
        Assert.AreEqual(LoaderError.Verify, e.Code);
        StringAssert.Contains(e.Message, "not the announced");
        AssertBoots(flash, img, 'A', 1);
        StringAssert.Contains(new SlotStore(flash).Describe()[1], "slot B: empty");
    }

    [TestMethod]
    public void ATornCommitLeavesThePreviousSlotBooting()
    {
        byte[] a = Image1.Value, b = Image2.Value;
        var flash = FlashFor(a.Length > b.Length ? a : b);
        Store(new SlotStore(flash), a);
        var store = new SlotStore(flash);
        store.BeginWrite(b.Length, Crc32.Append(0, b));
        for (int o = 0; o < b.Length; o += 4096) store.WriteData(o, b.AsSpan(o, Math.Min(4096, b.Length - o)));
        flash.Tear = (store.SlotOffset('B'), SlotRecord.Size / 2); // power fails halfway through programming B's record
        Assert.ThrowsExactly<IOException>(() => store.Commit());
        Assert.IsTrue(flash.Bytes.AsSpan((int)store.SlotOffset('B'), 12).IndexOfAnyExcept((byte)0xFF) >= 0, "half the record was programmed");

        AssertBoots(flash, a, 'A', 1);
        StringAssert.Contains(new SlotStore(flash).Inspect('B').Reason, "commit record CRC mismatch");
        // and the next attempt goes to B again, then boots as generation 2
        Assert.AreEqual(2u, Store(new SlotStore(flash), b));
        AssertBoots(flash, b, 'B', 2);
    }

    [TestMethod]
    public void ABitFlipInAnySectionRejectsThatSlotNamingItAndBootsTheOther()
    {
        var img = Image1.Value;
        var flash = FlashFor(img);
        Store(new SlotStore(flash), img);
        Store(new SlotStore(flash), img);
        AssertBoots(flash, img, 'B', 2);

        var model = FlashImage.Open(new MemoryFlash(img)).Model;
        long tableEnd = FlashImage.HeaderSize + FlashImage.LayerRecordSize * model.Layers.Length;
        var sections = new List<(string Name, long Offset, long Size, string Expected)>
        {
            ("header", 0, FlashImage.HeaderSize, "header: "),
            ("layer table", FlashImage.HeaderSize, tableEnd - FlashImage.HeaderSize, "layer table: CRC mismatch"),
        };
        foreach (var l in model.Layers.Where(l => l.WeightsSize > 0))
        {
            sections.Add(($"{l.Name} weights", l.WeightsOffset, l.WeightsSize, $"layer '{l.Name}': weights section CRC mismatch"));
            sections.Add(($"{l.Name} BN", l.BnOffset, l.BnSize, $"layer '{l.Name}': BN section CRC mismatch"));
        }
        Assert.IsTrue(sections.Count > 10, "the mini network has many conv layers");

        var rng = new Random(5);
        long slotB = new SlotStore(flash).ImageOffset('B');
        foreach (var (name, offset, size, expected) in sections)
        {
            int at = (int)(slotB + offset + rng.NextInt64(size));
            byte bit = (byte)(1 << rng.Next(8));
            flash.Bytes[at] ^= bit;
            var store = new SlotStore(flash);
            var boot = store.Boot();
            Assert.AreEqual(('A', 1u), (boot.Slot, boot.Generation), $"a flipped bit in the {name} must make slot B unbootable");
            var b = store.Inspect('B');
            Assert.IsFalse(b.Bootable);
            StringAssert.StartsWith(b.Reason, expected, $"bit flip in {name}");
            flash.Bytes[at] ^= bit;
        }
        AssertBoots(flash, img, 'B', 2);

        // both slots damaged: the message gives both reasons
        flash.Bytes[(int)(slotB + 100)] ^= 1;
        flash.Bytes[(int)(new SlotStore(flash).ImageOffset('A') + 5)] ^= 1;
        var e = Assert.ThrowsExactly<FlashImageException>(() => new SlotStore(flash).Boot());
        StringAssert.StartsWith(e.Message, "no bootable image in slot A or B: A: header: wrong magic");
        StringAssert.Contains(e.Message, "; B: layer table: CRC mismatch");
        StringAssert.EndsWith(e.Message, "flash one with `edgeresnet flash`");
    }

    // ---- the serial protocol ----

    [TestMethod]
    public void AnImageSentOverTheLinkBootsBitIdenticalAndTheNextGoesToTheOtherSlot()
    {
        byte[] a = Image1.Value, b = Image2.Value;
        var flash = FlashFor(a.Length > b.Length ? a : b);
        var first = Transfer(flash, a);
        Assert.AreEqual(('A', 1u), (first.Slot, first.Generation));
        int blocks = (a.Length + 8191) / 8192;
        Assert.AreEqual((0, blocks, (a.Length + 4095) / 4096), (first.BlocksSkipped, first.BlocksWritten, first.DataFrames));
        AssertBoots(flash, a, 'A', 1);

        var second = Transfer(flash, b);
        Assert.AreEqual(('B', 2u), (second.Slot, second.Generation));
        AssertBoots(flash, b, 'B', 2);

        // slot A still holds image a: sending it again transfers no data at all
        var third = Transfer(flash, a);
        Assert.AreEqual(('A', 3u, 0, blocks), (third.Slot, third.Generation, third.DataFrames, third.BlocksSkipped));
        AssertBoots(flash, a, 'A', 3);
        Assert.IsTrue(third.BytesSent < a.Length / 50, $"{third.BytesSent} bytes sent to confirm a {a.Length}-byte image");
    }

    [TestMethod]
    public void AHalfSentFrameFromACutHostDoesNotBlockTheNextSession()
    {
        // A UART never reports end of stream: the board still waits for the rest of a frame the
        // previous host died in the middle of, when the next host says HELLO on the same wire.
        byte[] a = Image1.Value;
        var flash = FlashFor(a);
        var (host, board) = PipeEnd.Pair();
        var run = Task.Run(new LoaderServer(new SlotStore(flash), board).Run);
        var half = Protocol.Encode(FrameType.Data, 7, new byte[4 + 4096]);
        host.Write(half, 0, half.Length / 2);
        var result = Client(host).Flash(a);
        Assert.AreEqual(('A', 1u), (result.Slot, result.Generation));
        AssertBoots(flash, a, 'A', 1);
        host.Dispose();
        Assert.IsTrue(run.Wait(TimeSpan.FromSeconds(20)));
    }

    [TestMethod]
    public void ACutTransferLeavesThePreviousImageBootingAndTheNextRunResumes()
    {
        byte[] a = Image1.Value, b = Image2.Value;
        var flash = FlashFor(a.Length > b.Length ? a : b);
        Transfer(flash, a);
        int frames = (b.Length + 4095) / 4096;

        // the link dies after HELLO, BEGIN and about three quarters of the requests
        var cut = Assert.ThrowsExactly<DeviceException>(() => Transfer(flash, b, (host, _) => host.CutAfterWrites = 3 + frames * 3 / 4));
        StringAssert.Contains(cut.Message, "the serial link failed");
        AssertBoots(flash, a, 'A', 1);
        StringAssert.Contains(new SlotStore(flash).Describe()[1], "slot B: ");

        var resumed = Transfer(flash, b);
        Assert.AreEqual(('B', 2u), (resumed.Slot, resumed.Generation));
        Assert.IsTrue(resumed.BlocksSkipped >= 3 && resumed.DataFrames < frames * 2 / 3, $"resume sent {resumed.DataFrames} of {frames} DATA frames, skipped {resumed.BlocksSkipped} blocks");
        AssertBoots(flash, b, 'B', 2);
    }

    [TestMethod]
    [DataRow(7 + 4 + 1000, DisplayName = "payload byte")]
    [DataRow(5, DisplayName = "length field (the board waits for bytes that never come)")]
    [DataRow(0, DisplayName = "sync byte (the board never sees the frame)")]
    [DataRow(-1, DisplayName = "CRC")]
    public void ACorruptedDataFrameIsResentAndTheImageIsRight(int flipByte)
    {
        var img = Image1.Value;
        var flash = FlashFor(img);
        int data = 0;
        var result = Transfer(flash, img, (host, _) => host.Tamper = f =>
            f[2] == (byte)FrameType.Data && data++ == 3 ? Flip(f, flipByte < 0 ? f.Length - 2 : flipByte, 3) : f);
        Assert.IsTrue(result.Retries >= 1, "the corrupt frame was resent");
        AssertBoots(flash, img, 'A', 1);
    }

    [TestMethod]
    [DataRow(7, DisplayName = "reply payload")]
    [DataRow(3, DisplayName = "reply seq")]
    [DataRow(1, DisplayName = "reply sync")]
    public void ACorruptedReplyIsDetectedAndTheRequestResent(int flipByte)
    {
        var img = Image1.Value;
        var flash = FlashFor(img);
        int replies = 0;
        var result = Transfer(flash, img, (_, board) => board.Tamper = f =>
            replies++ == 10 ? Flip(f, flipByte, 0) : f); // the reply to the 11th request: a DATA
        Assert.IsTrue(result.Retries >= 1);
        AssertBoots(flash, img, 'A', 1);
    }

    [TestMethod]
    public void TwoImagesOverTheLinkOntoTheEmulatedSpiNorChip()
    {
        byte[] a = Image1.Value, b = Image2.Value;
        var nor = new EdgeResNet.Flashing.SpiNor.SpiNorFlash(new EdgeResNet.Flashing.Emulation.SpiNorChip(1 << 20, 0xEF4014));
        foreach (var (img, slot, generation) in new[] { (a, 'A', 1u), (b, 'B', 2u) })
        {
            var (host, board) = PipeEnd.Pair();
            var run = Task.Run(new LoaderServer(new SlotStore(nor), board).Run);
            var result = Client(host).Flash(img);
            host.Dispose();
            Assert.IsTrue(run.Wait(10_000));
            Assert.AreEqual((slot, generation), (result.Slot, result.Generation));
            var boot = new SlotStore(nor).Boot();
            Assert.AreEqual((slot, generation), (boot.Slot, boot.Generation));
            var back = new byte[img.Length];
            boot.Region.Read(0, back);
            CollectionAssert.AreEqual(img, back);
        }
    }

    [TestMethod]
    public void TheHostRefusesAnImageTooBigBeforeTheBoardErasesAnything()
    {
        var flash = new MemoryStorage(256 * 1024);
        var e = Assert.ThrowsExactly<LoaderException>(() => Transfer(flash, new byte[200 * 1024]));
        Assert.AreEqual(LoaderError.TooLarge, e.Code);
        Assert.IsTrue(flash.Bytes.AsSpan().IndexOfAnyExcept((byte)0xFF) < 0);
    }

    [TestMethod]
    public void TheBoardNaksBadRequestsWithTheirSeq()
    {
        var (host, board) = PipeEnd.Pair();
        var run = Task.Run(new LoaderServer(new SlotStore(new MemoryStorage(256 * 1024)), board).Run);
        host.ReadTimeout = 5000;
        var reader = new FrameReader(host);
        (FrameType, ushort, LoaderError) Ask(FrameType type, ushort seq, byte[] payload)
        {
            Protocol.Write(host, type, seq, payload);
            var f = reader.ReadFrame();
            return (f.Type, f.Seq, (LoaderError)f.Payload.Span[0]);
        }
        Assert.AreEqual((FrameType.Nak, (ushort)7, LoaderError.State), Ask(FrameType.Data, 7, new byte[20]));
        Assert.AreEqual((FrameType.Nak, (ushort)8, LoaderError.BadRequest), Ask((FrameType)0x42, 8, []));
        Assert.AreEqual((FrameType.Nak, (ushort)9, LoaderError.Version), Ask(FrameType.Hello, 9, [9, 0]));
        Assert.AreEqual((FrameType.Nak, (ushort)10, LoaderError.TooLarge), Ask(FrameType.Begin, 10, [0, 0, 2, 0, 0, 0, 0, 0]));
        var bad = Protocol.Encode(FrameType.Query, 11, new byte[8]);
        bad[9] ^= 0x10;
        host.Write(bad);
        var nak = reader.ReadFrame();
        Assert.AreEqual((FrameType.Nak, (ushort)11, LoaderError.Crc), (nak.Type, nak.Seq, (LoaderError)nak.Payload.Span[0]));
        StringAssert.StartsWith(System.Text.Encoding.UTF8.GetString(nak.Payload.Span.Slice(1)), "crc");
        host.Dispose();
        Assert.IsTrue(run.Wait(5000));
    }

    [TestMethod]
    public void FrameReaderFindsFramesInNoiseAndSkipsCorruptOnes()
    {
        var s = new MemoryStream();
        s.Write([0x00, 0xA5, 0xA5, 0x11, 0x5A]);                                        // noise, half syncs
        s.Write(Protocol.Encode(FrameType.Hello, 1, [(byte)Protocol.Version, 0]));
        s.Write([0xA5, 0x5A, 0x01, 0x02, 0x00, 0xFF, 0xFF]);                             // impossible length
        var corrupt = Protocol.Encode(FrameType.Query, 2, new byte[8]);
        corrupt[^1] ^= 1;
        s.Write(corrupt);
        s.Write(Protocol.Encode(FrameType.Commit, 3, []));
        s.Write([0xA5, 0x5A, 0x05]);                                                    // cut short
        s.Position = 0;
        var r = new FrameReader(s);
        var f1 = r.ReadFrame();
        Assert.AreEqual((FrameType.Hello, (ushort)1), (f1.Type, f1.Seq));
        var e = Assert.ThrowsExactly<ProtocolException>(() => r.ReadFrame());
        StringAssert.Contains(e.Message, "length 65535");
        e = Assert.ThrowsExactly<ProtocolException>(() => r.ReadFrame());
        Assert.AreEqual((ushort)2, e.Seq);
        var f3 = r.ReadFrame();
        Assert.AreEqual((FrameType.Commit, (ushort)3, 0), (f3.Type, f3.Seq, f3.Payload.Length));
        Assert.ThrowsExactly<EndOfStreamException>(() => r.ReadFrame());
    }

    [TestMethod]
    public void SerialLinkNamesAMissingPort()
    {
        var e = Assert.ThrowsExactly<DeviceException>(() => SerialLink.Open("/dev/ttyNOSUCHPORT9", 115200));
        StringAssert.StartsWith(e.Message, "serial port /dev/ttyNOSUCHPORT9 does not exist");
    }

    static byte[] Flip(byte[] frame, int index, int bit)
    {
        var f = (byte[])frame.Clone();
        f[index] ^= (byte)(1 << bit);
        return f;
    }
}

/// <summary>A synchronous IProgress (Progress&lt;T&gt; posts to the thread pool, out of order).</summary>
sealed class ListProgress<T> : IProgress<T>
{
    public readonly List<T> Items = [];
    public void Report(T value) => Items.Add(value);
}

/// <summary>
/// NOR flash in memory: erase sets sectors to 0xFF, program ANDs (it can only clear bits) and must
/// stay inside one 256-byte page. It counts erased sectors and program calls, and can simulate a
/// power cut in the middle of one program.
/// </summary>
sealed class MemoryStorage : IWritableFlash
{
    public MemoryStorage(long capacity)
    {
        Bytes = new byte[capacity];
        Bytes.AsSpan().Fill(0xFF);
    }

    public readonly byte[] Bytes;
    public int Erases, Programs;
    /// <summary>The next program at this offset programs only this many bytes, then throws (a power cut).</summary>
    public (long Offset, int Bytes)? Tear;
    /// <summary>Programs do nothing (a write-protected chip).</summary>
    public bool IgnorePrograms;

    public long Length => Bytes.Length;
    public int SectorSize => 4096;

    public void Read(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset + destination.Length > Bytes.Length) throw new FlashImageException($"read of {destination.Length} at {offset} outside {Bytes.Length}");
        Bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
    }

    public void Erase(long offset, long length)
    {
        if (offset < 0 || offset % 4096 != 0 || length % 4096 != 0 || offset + length > Bytes.Length) throw new ArgumentException($"bad erase {offset} +{length}");
        Bytes.AsSpan((int)offset, (int)length).Fill(0xFF);
        Erases += (int)(length / 4096);
    }

    public void Program(long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset % 256 + data.Length > 256 || offset + data.Length > Bytes.Length) throw new ArgumentException($"program of {data.Length} at {offset} crosses a page");
        Programs++;
        if (IgnorePrograms) return;
        int n = data.Length;
        if (Tear is { } t && t.Offset == offset) { n = t.Bytes; Tear = null; }
        for (int i = 0; i < n; i++) Bytes[offset + i] &= data[i];
        if (n != data.Length) throw new IOException("power cut while programming");
    }
}

/// <summary>One direction of an in-memory serial link: blocking reads with a timeout.</summary>
sealed class BlockingPipe
{
    readonly Queue<byte[]> _chunks = new();
    int _offset;
    bool _completed;

    public void Write(byte[] data)
    {
        lock (_chunks) { _chunks.Enqueue(data); Monitor.PulseAll(_chunks); }
    }

    public void Complete()
    {
        lock (_chunks) { _completed = true; Monitor.PulseAll(_chunks); }
    }

    public int Read(Span<byte> destination, int timeoutMs)
    {
        lock (_chunks)
        {
            var deadline = Environment.TickCount64 + timeoutMs;
            while (_chunks.Count == 0)
            {
                if (_completed) return 0;
                long left = timeoutMs == Timeout.Infinite ? Timeout.Infinite : deadline - Environment.TickCount64;
                if (left != Timeout.Infinite && left <= 0 || !Monitor.Wait(_chunks, (int)left)) throw new TimeoutException("no data on the link");
            }
            var chunk = _chunks.Peek();
            int n = Math.Min(destination.Length, chunk.Length - _offset);
            chunk.AsSpan(_offset, n).CopyTo(destination);
            _offset += n;
            if (_offset == chunk.Length) { _chunks.Dequeue(); _offset = 0; }
            return n;
        }
    }
}

/// <summary>
/// One end of an in-memory serial link. <see cref="Tamper"/> can rewrite what this end sends
/// (each Write is one frame: the loader writes whole frames); <see cref="CutAfterWrites"/> makes
/// later writes fail as a pulled cable does.
/// </summary>
sealed class PipeEnd(BlockingPipe input, BlockingPipe output) : Stream
{
    public static (PipeEnd Host, PipeEnd Board) Pair()
    {
        BlockingPipe toBoard = new(), toHost = new();
        return (new PipeEnd(toHost, toBoard), new PipeEnd(toBoard, toHost));
    }

    public Func<byte[], byte[]>? Tamper;
    public int? CutAfterWrites;
    int _writes;

    public override bool CanTimeout => true;
    public override int ReadTimeout { get; set; } = Timeout.Infinite;
    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer.AsSpan(offset, count), ReadTimeout);
    public override int Read(Span<byte> buffer) => input.Read(buffer, ReadTimeout);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (++_writes > CutAfterWrites) throw new IOException("the link was cut");
        var bytes = buffer.ToArray();
        output.Write(Tamper is null ? bytes : Tamper(bytes));
    }

    public override void Flush() { }
    protected override void Dispose(bool disposing) { output.Complete(); base.Dispose(disposing); }
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
