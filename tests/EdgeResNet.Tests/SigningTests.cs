using System.Buffers.Binary;
using EdgeResNet.Common;
using EdgeResNet.Common.Signing;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>Signed images, trusted keys, anti-rollback and the loader's per-session bounds (issue 15).</summary>
[TestClass]
public sealed class SigningTests
{
    internal static readonly Lazy<SigningKey> Key = new(SigningKey.Create);
    internal static readonly Lazy<TrustedKey> Trusted = new(() => TrustedKey.FromPem(Key.Value.PublicKeyPem, "test key"));
    static readonly Lazy<byte[]> Image1 = new(() => RuntimeTests.MiniPacked(new QuantOptions(), 3).Image);
    static readonly Lazy<byte[]> Image2 = new(() => RuntimeTests.MiniPacked(new QuantOptions(), 4).Image);

    internal static byte[] Signed(byte[] image, uint counter, SigningKey? key = null) => ImageSigning.Sign(image, key ?? Key.Value, counter);

    static MemoryStorage FlashFor(byte[] image) => new(2 * ((image.Length + SlotStore.RecordSectorSize + 65535) / 65536 * 65536 + 65536));

    /// <summary>What the loader does for one image: manifest (if signed), BEGIN, every chunk, COMMIT.</summary>
    internal static uint Update(SlotStore store, byte[] file)
    {
        if (ImageSigning.ReadBlock(file) is { } manifest) store.Authorize(manifest);
        store.BeginWrite(file.Length, Crc32.Append(0, file));
        for (int o = 0; o < file.Length; o += 4096) store.WriteData(o, file.AsSpan(o, Math.Min(4096, file.Length - o)));
        return store.Commit();
    }

    [TestMethod]
    public void KeysAreWrittenPrivateAndNeverOverwritten()
    {
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "board.key");
        using (var key = SigningKey.Create()) key.Save(path);
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path), "the private key is readable by its owner only");
        using var loaded = SigningKey.Load(path);
        Assert.AreEqual(loaded.KeyIdHex, TrustedKey.Load(path + ".pub").KeyIdHex, "the .pub file is the private key's public half");
        StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => loaded.Save(path)).Message, "a key is never overwritten");
        StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => TrustedKey.Load(path)).Message, "is a private key; a board needs only the public key");
        StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => SigningKey.Load(path + ".pub")).Message, "holds only a public key");
    }

    [TestMethod]
    public void ASignedImageVerifiesAndEveryKindOfTamperingIsNamed()
    {
        var image = Image1.Value;
        var signed = Signed(image, 7);
        Assert.AreEqual(image.Length + SignatureBlock.Size, signed.Length);
        CollectionAssert.AreEqual(image, signed[..image.Length], "signing appends; the image itself is unchanged");
        var resigned = Signed(signed, 8);
        Assert.AreEqual(signed.Length, resigned.Length, "signing a signed image replaces its block");
        CollectionAssert.AreEqual(image, resigned[..image.Length]);
        var trust = new[] { Trusted.Value };
        var check = ImageSigning.Verify(new MemoryFlash(signed), image.Length, trust);
        Assert.AreEqual((Key.Value.KeyIdHex, 7u), (check.KeyId, check.SecurityCounter));

        string Refusal(byte[] file) => Assert.ThrowsExactly<SignatureException>(() => ImageSigning.Verify(new MemoryFlash(file), image.Length, trust)).Message;
        StringAssert.Contains(Refusal(image), "the image is not signed");
        var body = (byte[])signed.Clone();
        body[image.Length / 2] ^= 1;
        StringAssert.Contains(Refusal(body), "do not hash to the signed SHA-256");
        var counter = (byte[])signed.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(counter.AsSpan(image.Length + 12), 99);
        StringAssert.Contains(Refusal(counter), "the signature does not verify");
        using var stranger = SigningKey.Create();
        StringAssert.Contains(Refusal(Signed(image, 7, stranger)), $"signed by key {stranger.KeyIdHex}, which this board does not trust");
        var noise = (byte[])signed.Clone();
        noise.AsSpan(image.Length).Fill(0xFF);
        StringAssert.Contains(Refusal(noise), "no signature block follows it");
    }

    [TestMethod]
    public void ATrustingBoardRefusesUnsignedForeignAndDowngradedImagesBeforeErasingAnything()
    {
        var flash = FlashFor(Signed(Image1.Value, 0));
        var store = new SlotStore(flash, trust: [Trusted.Value]);
        Assert.AreEqual(1u, Update(store, Signed(Image1.Value, 5)));
        var before = (byte[])flash.Bytes.Clone();

        var fresh = new SlotStore(flash, trust: [Trusted.Value]);
        var e = Assert.ThrowsExactly<LoaderException>(() => Update(fresh, Image2.Value));
        Assert.AreEqual(LoaderError.Unauthenticated, e.Code);
        StringAssert.Contains(e.Message, "send the signed manifest (MANIFEST) before BEGIN");
        using var stranger = SigningKey.Create();
        Assert.AreEqual(LoaderError.Unauthenticated, Assert.ThrowsExactly<LoaderException>(() => Update(fresh, Signed(Image2.Value, 9, stranger))).Code);
        e = Assert.ThrowsExactly<LoaderException>(() => Update(fresh, Signed(Image2.Value, 4)));
        Assert.AreEqual(LoaderError.Rollback, e.Code);
        StringAssert.Contains(e.Message, "security counter 4 is below the 5 of the image that boots now");
        CollectionAssert.AreEqual(before, flash.Bytes, "nothing was erased or written for a refused image");

        Assert.AreEqual(2u, Update(fresh, Signed(Image2.Value, 5)), "an equal counter is no downgrade");
        var boot = new SlotStore(flash, trust: [Trusted.Value]).Boot();
        Assert.AreEqual(('B', 2u, 5u), (boot.Slot, boot.Generation, boot.Signature!.Value.SecurityCounter));

        // A board that trusts the key boots only signed slots: an unsigned image written by an untrusting loader does not boot on it.
        Update(new SlotStore(flash), Image1.Value); // slot A, generation 3, unsigned
        Assert.AreEqual('A', new SlotStore(flash).Boot().Slot);
        var trusting = new SlotStore(flash, trust: [Trusted.Value]);
        Assert.AreEqual('B', trusting.Boot().Slot, "the newer, unsigned slot is passed over");
        StringAssert.Contains(trusting.Inspect('A').Reason, "signature: the image is not signed");
    }

    /// <summary>Over the serial link: the host sends a signed image's manifest first; the board refuses a foreign one, the host an unsigned or downgraded one.</summary>
    [TestMethod]
    public void OverTheLinkASignedImageIsTakenAndEveryOtherRefusedWithThePreviousOneBooting()
    {
        var flash = FlashFor(Signed(Image1.Value, 0));
        LoaderResult Send(byte[] file)
        {
            var (host, board) = PipeEnd.Pair();
            var run = Task.Run(new LoaderServer(new SlotStore(flash, trust: [Trusted.Value]), board).Run);
            try { return new LoaderClient(host) { Timeout = TimeSpan.FromSeconds(1), LongTimeout = TimeSpan.FromSeconds(20) }.Flash(file); }
            finally
            {
                host.Dispose();
                Assert.IsTrue(run.Wait(TimeSpan.FromSeconds(20)), "the board loop did not end when the link closed");
            }
        }
        var good = Signed(Image1.Value, 3);
        Assert.AreEqual(1u, Send(good).Generation);
        var before = (byte[])flash.Bytes.Clone();
        using var stranger = SigningKey.Create();
        foreach (var (file, code, says) in new[]
        {
            (Image2.Value, LoaderError.Unauthenticated, "the board takes only signed images and this one is not signed"),
            (Signed(Image2.Value, 2), LoaderError.Rollback, "security counter 2 is below the 3 of the image the board boots"),
            (Signed(Image2.Value, 4, stranger), LoaderError.Unauthenticated, $"the board refused MANIFEST: manifest refused: signed by key {stranger.KeyIdHex}"),
        })
        {
            var e = Assert.ThrowsExactly<LoaderException>(() => Send(file));
            Assert.AreEqual(code, e.Code, e.Message);
            StringAssert.Contains(e.Message, says);
        }
        CollectionAssert.AreEqual(before, flash.Bytes, "a refused image erased or wrote nothing");
        var boot = new SlotStore(flash, trust: [Trusted.Value]).Boot();
        Assert.AreEqual(('A', 1u, 3u), (boot.Slot, boot.Generation, boot.Signature!.Value.SecurityCounter));
    }

    /// <summary>A host that goes silent mid-session does not hold the loader: the session ends after the idle timeout.</summary>
    [TestMethod]
    public void ASilentHostEndsTheSessionAfterTheIdleTimeout()
    {
        var (host, board) = PipeEnd.Pair();
        var server = new LoaderServer(new SlotStore(FlashFor(Image1.Value)), board) { IdleTimeout = TimeSpan.FromMilliseconds(300) };
        var run = Task.Run(server.Run);
        Thread.Sleep(600);
        Assert.IsFalse(run.IsCompleted, "before a host's first frame the loader waits as long as it takes");
        host.Write(Protocol.Encode(FrameType.Hello, 1, [(byte)Protocol.Version, 0]));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.ThrowsExactly<AggregateException>(() => run.Wait(TimeSpan.FromSeconds(10)));
        Assert.IsInstanceOfType<TimeoutException>(e.InnerException);
        Assert.IsGreaterThanOrEqualTo(250, clock.ElapsedMilliseconds, "the session ended before its idle timeout");
        Assert.AreEqual(1, server.FramesReceived);
        host.Dispose();
    }

    /// <summary>Raw frames, as a hostile host sends them (no client-side checks): what the board itself refuses.</summary>
    [TestMethod]
    public void TheBoardItselfRefusesBareBeginsStaleManifestsAndEraseLoops()
    {
        var flash = FlashFor(Signed(Image1.Value, 0));
        var store = new SlotStore(flash, trust: [Trusted.Value]);
        Update(store, Signed(Image1.Value, 5)); // slot A boots, counter 5
        var image = Signed(Image2.Value, 6);
        var manifest = ImageSigning.ReadBlock(image)!;
        using var stranger = SigningKey.Create();
        byte[] Le(params uint[] v) { var b = new byte[4 * v.Length]; for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4 * i), v[i]); return b; }
        var begin = Le((uint)image.Length, Crc32.Append(0, image));
        (FrameType, LoaderError?)[] Session(params (FrameType Type, byte[] Payload)[] requests)
        {
            var input = new MemoryStream();
            ushort seq = 1;
            foreach (var (t, p) in requests) input.Write(Protocol.Encode(t, seq++, p));
            input.Position = 0;
            var replies = new MemoryStream();
            new LoaderServer(store, new DuplexMemory(input, replies)).Run();
            replies.Position = 0;
            var reader = new FrameReader(replies);
            return requests.Select(_ => { var f = reader.ReadFrame(); return (f.Type, f.Type == FrameType.Nak ? (LoaderError?)f.Payload.Span[0] : null); }).ToArray();
        }
        var data = Enumerable.Range(0, (image.Length + 4095) / 4096)
            .Select(i => (FrameType.Data, (byte[])[.. Le((uint)(4096 * i)), .. image.AsSpan(4096 * i, Math.Min(4096, image.Length - 4096 * i))])).ToArray();

        // A refused manifest after BEGIN changes nothing: the write still commits against the manifest BEGIN took.
        var r = Session([(FrameType.Manifest, manifest.Encode()), (FrameType.Begin, begin), .. data,
            (FrameType.Manifest, ImageSigning.ReadBlock(Signed(Image2.Value, 6, stranger))!.Encode()), (FrameType.Commit, [])]);
        Assert.AreEqual((FrameType.Nak, (LoaderError?)LoaderError.Unauthenticated), r[^2], "the stranger's manifest");
        Assert.AreEqual((FrameType.Ack, (LoaderError?)null), r[^1], "COMMIT of the genuine write");
        Assert.AreEqual(('B', 2u), (new SlotStore(flash, trust: [Trusted.Value]).Boot().Slot, new SlotStore(flash, trust: [Trusted.Value]).Boot().Generation));
        var committed = (byte[])flash.Bytes.Clone();

        // The manifest authorised that image only: a bare BEGIN afterwards, or in a new session, erases nothing.
        r = Session([(FrameType.Begin, begin)]);
        Assert.AreEqual((FrameType.Nak, (LoaderError?)LoaderError.Unauthenticated), r[0]);
        CollectionAssert.AreEqual(committed, flash.Bytes, "a bare BEGIN erased something");

        // BEGIN again and again does not reset the erase bound: a sector is erased once per host session.
        var ones = Enumerable.Repeat((byte)0xFF, 4096).ToArray();
        var zeros = new byte[4096];
        r = Session([(FrameType.Manifest, manifest.Encode()), (FrameType.Begin, begin), (FrameType.Data, [.. Le(0), .. zeros]), (FrameType.Data, [.. Le(0), .. ones]),
            (FrameType.Begin, begin), (FrameType.Data, [.. Le(0), .. zeros]), (FrameType.Data, [.. Le(0), .. ones])]);
        Assert.AreEqual((FrameType.Ack, (LoaderError?)null), r[3], "the first erase");
        Assert.AreEqual((FrameType.Nak, (LoaderError?)LoaderError.Limit), r[^1], "the second erase of one sector in a session");
    }

    /// <summary>The anti-rollback floor is the highest signed counter of an intact record: damage to the newest slot does not revive an older, lower-counter one.</summary>
    [TestMethod]
    public void ADamagedNewestSlotDoesNotBringBackALowerCounter()
    {
        var flash = FlashFor(Signed(Image1.Value, 0));
        var store = new SlotStore(flash, trust: [Trusted.Value]);
        Update(store, Signed(Image1.Value, 5));
        Update(new SlotStore(flash, trust: [Trusted.Value]), Signed(Image2.Value, 7)); // slot B, counter 7
        var b = new SlotStore(flash).Inspect('B').Image!.Model.Layers.First(l => l.WeightsSize > 0);
        flash.Bytes[new SlotStore(flash).ImageOffset('B') + b.WeightsOffset] ^= 1; // B's weights damaged, its record and manifest intact
        var after = new SlotStore(flash, trust: [Trusted.Value]);
        Assert.AreEqual(7u, after.SecurityFloor);
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => after.Boot()).Message, "security counter 5 is below the floor 7");
        Assert.AreEqual(LoaderError.Rollback, Assert.ThrowsExactly<LoaderException>(() => after.Authorize(ImageSigning.ReadBlock(Signed(Image1.Value, 6))!)).Code);
        Assert.AreEqual(3u, Update(after, Signed(Image1.Value, 7)), "an image at the floor repairs the board");
    }

    [TestMethod]
    public void ASessionErasesASectorOnceAndReadsTheSlotBackOnce()
    {
        var image = Image1.Value;
        var flash = FlashFor(image);
        var store = new SlotStore(flash);
        store.BeginWrite(image.Length, Crc32.Append(0, image));
        var zeros = new byte[4096];
        var ones = Enumerable.Repeat((byte)0xFF, 4096).ToArray();
        Assert.AreEqual(SectorAction.Programmed, store.WriteData(0, zeros));
        Assert.AreEqual(SectorAction.Skipped, store.WriteData(0, zeros), "a resend does nothing");
        Assert.AreEqual(SectorAction.Erased, store.WriteData(0, ones), "the first erase of a sector in a session");
        Assert.AreEqual(SectorAction.Programmed, store.WriteData(0, zeros));
        var e = Assert.ThrowsExactly<LoaderException>(() => store.WriteData(0, ones));
        Assert.AreEqual(LoaderError.Limit, e.Code);
        StringAssert.Contains(e.Message, "was already erased once in this session");

        // COMMIT of a wrong slot reads it back once; again only after a new BEGIN.
        Assert.AreEqual(LoaderError.Verify, Assert.ThrowsExactly<LoaderException>(() => store.Commit()).Code);
        e = Assert.ThrowsExactly<LoaderException>(() => store.Commit());
        Assert.AreEqual(LoaderError.Limit, e.Code);
        StringAssert.Contains(e.Message, "COMMIT already read this slot back once in this session");
        store.BeginSession();
        Assert.AreEqual(1u, Update(store, image), "a new session writes and commits the image");
    }
}
