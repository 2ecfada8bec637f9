using System.Buffers.Binary;
using System.Diagnostics;
using CsCheck;
using EdgeResNet.Common.Signing;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>
/// Random and mutated input for everything that parses bytes from outside: the frame reader, the
/// board's loader loop, and FlashImage.Open. Each may only throw its expected exception types and
/// must end. A few thousand inputs by default (CI); <c>FUZZ_ITERATIONS=100000 dotnet test ...
/// --filter ClassName~LoaderFuzz</c> for a long run.
/// </summary>
[TestClass]
public sealed class LoaderFuzzTests
{
    static readonly long Iterations = long.TryParse(Environment.GetEnvironmentVariable("FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 2000;
    static readonly Lazy<byte[]> Image = new(() => RuntimeTests.MiniPacked(new QuantOptions(), 3).Image);

    static byte[] Concat(IEnumerable<byte[]> parts)
    {
        var all = new MemoryStream();
        foreach (var p in parts) all.Write(p);
        return all.ToArray();
    }

    static void Report(string what, long inputs, Stopwatch clock, string detail) =>
        Console.WriteLine($"fuzz {what}: {inputs:N0} inputs in {clock.Elapsed.TotalSeconds:0.0} s; {detail}");

    // ---- FrameReader ----

    static readonly Gen<FrameType> AnyType = Gen.Frequency(
        (4, Gen.OneOf(FrameType.Hello, FrameType.Manifest, FrameType.Begin, FrameType.Query, FrameType.Data, FrameType.Commit, FrameType.Ack, FrameType.Nak)),
        (1, Gen.Byte.Select(b => (FrameType)b)));

    /// <summary>A piece of line traffic: a valid frame (small or full size), noise, a header with an impossible length, or a frame cut short.</summary>
    static readonly Gen<byte[]> Piece = Gen.Frequency(
        (6, Gen.Select(AnyType, Gen.UShort, Gen.Byte.Array[0, 40], (t, s, p) => Protocol.Encode(t, s, p))),
        (1, Gen.Select(Gen.UShort, Gen.Byte.Array[Protocol.ChunkSize, Protocol.MaxPayload], (s, p) => Protocol.Encode(FrameType.Data, s, p))),
        (2, Gen.Byte.Array[1, 40]),
        (1, Gen.Select(Gen.UShort[Protocol.MaxPayload + 1, ushort.MaxValue], Gen.Byte.Array[0, 20], (len, rest) =>
            new byte[] { Protocol.Sync0, Protocol.Sync1, 4, 1, 0, (byte)len, (byte)(len >> 8) }.Concat(rest).ToArray())),
        (1, Gen.Select(AnyType, Gen.Byte.Array[0, 40], Gen.Int[0, 50], (t, p, cut) => Protocol.Encode(t, 7, p)[..Math.Min(cut, p.Length + 10)])));

    /// <summary>Pieces back to back, then 0..4 bit flips anywhere.</summary>
    static readonly Gen<byte[]> LineTraffic = Gen.Select(Piece.Array[0, 12], Gen.Int.Array[0, 4], (pieces, flips) =>
    {
        var bytes = Concat(pieces);
        foreach (int f in flips)
            if (bytes.Length > 0) bytes[(f & int.MaxValue) % bytes.Length] ^= (byte)(1 << (f >>> 28 & 7));
        return bytes;
    });

    [TestMethod]
    public void FrameReaderOnlyRejectsOrReturnsRealFramesAndAlwaysEnds()
    {
        long frames = 0, rejected = 0, bytes = 0;
        var clock = Stopwatch.StartNew();
        LineTraffic.Sample(input =>
        {
            var reader = new FrameReader(new MemoryStream(input));
            int calls = 0;
            while (true)
            {
                // Every call consumes at least one byte or ends, so this bound means "never hangs".
                if (++calls > input.Length + 2) throw new InvalidOperationException($"{calls} reads from {input.Length} bytes");
                try
                {
                    var f = reader.ReadFrame();
                    Interlocked.Increment(ref frames);
                    Assert.IsTrue(f.Payload.Length <= Protocol.MaxPayload);
                    // the reader never invents a frame: the exact bytes are in the input
                    Assert.IsTrue(input.AsSpan().IndexOf(Protocol.Encode(f.Type, f.Seq, f.Payload.Span)) >= 0, "a frame that is not in the input");
                }
                catch (ProtocolException) { Interlocked.Increment(ref rejected); }
                catch (EndOfStreamException) { break; }
            }
            Interlocked.Add(ref bytes, input.Length);
        }, iter: Iterations);
        Report("FrameReader", Iterations, clock, $"{bytes:N0} bytes, {frames:N0} frames returned, {rejected:N0} rejected");
    }

    [TestMethod]
    public void FrameReaderReturnsUndamagedTrafficExactly()
    {
        var frames = Gen.Select(AnyType, Gen.UShort, Gen.Byte.Array[0, Protocol.MaxPayload], (t, s, p) => (t, s, p)).Array[0, 6];
        frames.Sample(list =>
        {
            var reader = new FrameReader(new MemoryStream(list.SelectMany(x => Protocol.Encode(x.t, x.s, x.p)).ToArray()));
            foreach (var (t, s, p) in list)
            {
                var f = reader.ReadFrame();
                Assert.AreEqual((t, s), (f.Type, f.Seq));
                Assert.IsTrue(f.Payload.Span.SequenceEqual(p));
            }
            Assert.ThrowsExactly<EndOfStreamException>(() => reader.ReadFrame());
        }, iter: Math.Max(100, Iterations / 10));
    }

    // ---- LoaderServer ----

    /// <summary>
    /// One loader set-up: the image the host sends, the flash as the board has it before the update (the
    /// same image committed in slot A), the keys the board trusts, and the host's session. Unsigned: the
    /// board trusts no key. Signed: the image carries a signature block and the board trusts its key.
    /// </summary>
    sealed record LoaderCase(byte[] Image, byte[] BaseFlash, TrustedKey[] Trust, byte[][] Session, byte[][] TamperedSession, byte[][] ForeignSession);

    static readonly Lazy<LoaderCase> Unsigned = new(() => MakeCase(Image.Value, []));
    static readonly Lazy<LoaderCase> Signed = new(() => MakeCase(SigningTests.Signed(Image.Value, 1), [SigningTests.Trusted.Value]));

    static LoaderCase MakeCase(byte[] img, TrustedKey[] trust)
    {
        var flash = new MemoryStorage(2 * ((img.Length + SlotStore.RecordSectorSize + 65535) / 65536 * 65536));
        SigningTests.Update(new SlotStore(flash, trust: trust), img);
        // An attacker's sessions. Signed: another valid image (every CRC right, so only the hash can tell) under the
        // genuine manifest, and the image signed by another key. Unsigned: the image with a byte changed (the CRCs tell).
        var other = RuntimeTests.MiniPacked(new QuantOptions(), 8).Image;
        Assert.AreEqual(Image.Value.Length, other.Length, "the mini images of two seeds have one size");
        var flipped = (byte[])img.Clone();
        flipped[img.Length / 3] ^= 0x40;
        byte[] tampered = trust.Length > 0 ? [.. other, .. img.AsSpan(other.Length)] : flipped;
        using var stranger = SigningKey.Create();
        var foreign = trust.Length > 0 ? ImageSigning.Sign(img, stranger, 9) : tampered;
        return new LoaderCase(img, flash.Bytes, trust, SessionFor(img, img), SessionFor(tampered, img), SessionFor(foreign, foreign));
    }

    /// <summary>
    /// What a host sends to put <paramref name="data"/> into slot B: HELLO, the MANIFEST of <paramref name="manifestOf"/>
    /// if it is signed, BEGIN, QUERY + DATA per 8 KiB block, COMMIT.
    /// </summary>
    static byte[][] SessionFor(byte[] data, byte[] manifestOf)
    {
        var frames = new List<byte[]>();
        ushort seq = 100;
        byte[] Le(params uint[] v) { var b = new byte[4 * v.Length]; for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4 * i), v[i]); return b; }
        frames.Add(Protocol.Encode(FrameType.Hello, seq++, [(byte)Protocol.Version, 0]));
        if (ImageSigning.ReadBlock(manifestOf) is { } manifest)
            frames.Add(Protocol.Encode(FrameType.Manifest, seq++, manifest.Encode()));
        frames.Add(Protocol.Encode(FrameType.Begin, seq++, Le((uint)data.Length, Crc32.Append(0, data))));
        for (int block = 0; block < data.Length; block += 8192)
        {
            frames.Add(Protocol.Encode(FrameType.Query, seq++, Le((uint)block, (uint)Math.Min(8192, data.Length - block))));
            for (int o = block; o < Math.Min(block + 8192, data.Length); o += 4096)
                frames.Add(Protocol.Encode(FrameType.Data, seq++, [.. Le((uint)o), .. data.AsSpan(o, Math.Min(4096, data.Length - o))]));
        }
        frames.Add(Protocol.Encode(FrameType.Commit, seq, []));
        return frames.ToArray();
    }

    /// <summary>The session damaged: bit flips, a cut, noise spliced in, frames dropped, repeated or swapped, a huge length field; or left intact (kind 0).</summary>
    /// <para>Kinds 7 and 8: an attacker's intact session (a tampered image under the genuine manifest; an image by a stranger's key).</para>
    static Gen<(int Kind, byte[] Bytes)> MutatedSession(LoaderCase c) => Gen.Select(Gen.Int[0, 8], Gen.Int.Array[1, 4], Gen.Byte.Array[1, 64], (kind, numbers, noise) =>
    {
        var frames = (kind switch { 7 => c.TamperedSession, 8 => c.ForeignSession, _ => c.Session }).ToList();
        int Pick(int x, int count) => (x & int.MaxValue) % count;
        switch (kind)
        {
            case 4:
                foreach (int x in numbers)
                {
                    int i = Pick(x, frames.Count);
                    if ((x & 1) == 0) frames.Insert(i, frames[i]); else frames.RemoveAt(i);
                    if (frames.Count == 0) break;
                }
                break;
            case 5:
            {
                int i = Pick(numbers[0], frames.Count);
                var f = frames[i] = (byte[])frames[i].Clone();
                BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(5), (ushort)(Protocol.MaxPayload + 1 + Pick(numbers[0] >> 8, ushort.MaxValue - Protocol.MaxPayload)));
                break;
            }
            case 6:
            {
                int i = Pick(numbers[0], frames.Count), j = Pick(numbers[^1] >> 4, frames.Count);
                (frames[i], frames[j]) = (frames[j], frames[i]);
                break;
            }
        }
        var bytes = Concat(frames);
        switch (kind)
        {
            case 1:
                foreach (int x in numbers) bytes[Pick(x, bytes.Length)] ^= (byte)(1 << (x >>> 28 & 7));
                break;
            case 2:
                bytes = bytes[..Pick(numbers[0], bytes.Length)];
                break;
            case 3:
            {
                int at = Pick(numbers[0], bytes.Length);
                bytes = [.. bytes.AsSpan(0, at), .. noise, .. bytes.AsSpan(at)];
                break;
            }
        }
        return (kind, bytes);
    });

    /// <summary>Requests with random fields: BEGIN of any length and CRC, QUERY and DATA anywhere, unknown types, odd payload sizes.</summary>
    static readonly Gen<(int Kind, byte[] Bytes)> RandomRequests = Gen.Select(AnyType, Gen.UShort, Gen.UInt, Gen.UInt, Gen.Byte.Array[0, 80], (t, s, a, b, tail) =>
    {
        var p = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(p, (a & 1) == 0 ? a % (200 * 1024) & ~4095u : a);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), b % 3 == 0 ? b % (128 * 1024) : b);
        return Protocol.Encode(t, s, t switch { FrameType.Commit => [], FrameType.Hello => p[..2], FrameType.Data => [.. p[..4], .. tail], FrameType.Manifest when (a & 4) == 0 => RandomManifest(tail), _ => (a & 2) == 0 ? p : [.. p, .. tail] });
    }).Array[1, 12].Select(frames => (-1, Concat(frames)));

    /// <summary>A 128-byte MANIFEST payload with the right magic and size and random fields and signature.</summary>
    static byte[] RandomManifest(byte[] random)
    {
        var m = new byte[SignatureBlock.Size];
        for (int i = 0; i < m.Length; i++) m[i] = random.Length == 0 ? (byte)i : random[i % random.Length];
        SignatureBlock.Magic.CopyTo(m);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), SignatureBlock.Size);
        return m;
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)] // the board trusts a key: the signed path, manifest first
    public void NoByteStreamMakesTheBoardFailOrLoseItsBootableImage(bool signed)
    {
        long received = 0, corrupt = 0, committedB = 0, bytes = 0;
        var c = (signed ? Signed : Unsigned).Value;
        var img = c.Image;
        var clock = Stopwatch.StartNew();
        Gen.Frequency((3, MutatedSession(c)), (1, RandomRequests)).Sample(input =>
        {
            var flash = new MemoryStorage(c.BaseFlash.Length);
            c.BaseFlash.CopyTo(flash.Bytes, 0);
            var replies = new MemoryStream();
            var server = new LoaderServer(new SlotStore(flash, trust: c.Trust), new DuplexMemory(new MemoryStream(input.Bytes), replies));
            server.Run(); // must return at the end of the input, whatever it held

            // every reply is a well-formed frame, one per frame received (good or corrupt)
            replies.Position = 0;
            var reader = new FrameReader(replies);
            long answers = 0;
            while (true)
            {
                try { var f = reader.ReadFrame(); Assert.IsTrue(f.Type is FrameType.Ack or FrameType.Nak); answers++; }
                catch (EndOfStreamException) { break; }
            }
            Assert.AreEqual(server.FramesReceived + server.CorruptFrames, answers);

            // the board still boots, and whatever boots is exactly the image: nothing else can be committed
            // (header and table checks only: the byte comparison below is stronger than the section CRCs)
            var boot = new SlotStore(flash, verifySections: false, trust: c.Trust).Boot();
            var back = new byte[boot.Region.Length];
            boot.Region.Read(0, back);
            Assert.IsTrue(back.AsSpan().SequenceEqual(img), $"slot {boot.Slot} boots something else");
            if (input.Kind == 0) Assert.AreEqual(('B', 2u), (boot.Slot, boot.Generation), "the intact session commits slot B");
            if (input.Kind == 7 || (signed && input.Kind == 8)) Assert.AreEqual('A', boot.Slot, "an attacker's session committed");
            if (boot.Slot == 'B') Interlocked.Increment(ref committedB);
            Interlocked.Add(ref received, server.FramesReceived);
            Interlocked.Add(ref corrupt, server.CorruptFrames);
            Interlocked.Add(ref bytes, input.Bytes.Length);
        }, iter: Iterations, print: x => $"kind {x.Kind}, {x.Bytes.Length} bytes: {Convert.ToHexString(x.Bytes.AsSpan(0, Math.Min(64, x.Bytes.Length)))}...");
        Report(signed ? "LoaderServer (signed images, trusted key)" : "LoaderServer (unsigned)", Iterations, clock, $"{bytes:N0} bytes, {received:N0} frames answered, {corrupt:N0} corrupt frames NAKed, {committedB:N0} runs committed slot B");
    }

    // ---- FlashImage.Open ----

    /// <summary>Puts the table, image and header CRCs right again after a mutation, so the checks behind the CRCs run.</summary>
    static void RepairCrcs(byte[] b)
    {
        const int headerCrc = FlashImage.HeaderSize - 4;
        if (b.Length < FlashImage.HeaderSize) return;
        long tableEnd = FlashImage.HeaderSize + (long)BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(14)) * FlashImage.LayerRecordSize;
        if (tableEnd <= b.Length) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(36), Crc32.Append(0, b.AsSpan(FlashImage.HeaderSize, (int)tableEnd - FlashImage.HeaderSize)));
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(40));
        if (size >= FlashImage.HeaderSize && size <= (ulong)b.Length)
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(48), Crc32.Append(0, b.AsSpan(FlashImage.HeaderSize, (int)size - FlashImage.HeaderSize)));
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(headerCrc), Crc32.Append(0, b.AsSpan(0, headerCrc)));
    }

    static readonly byte[] Extremes = [0x00, 0xFF, 0x7F, 0x80, 0x01];

    /// <summary>(must fail, bytes): random bytes (some with a valid magic and header CRC); the image with bit flips; cut short; or a header/table field set to an extreme value with the CRCs repaired.</summary>
    static readonly Gen<(bool MustFail, byte[] Bytes)> Images = Gen.Frequency(
        (1, Gen.Select(Gen.Byte.Array[0, 700], Gen.Bool, (b, magic) =>
        {
            if (magic && b.Length >= FlashImage.HeaderSize)
            {
                "EDGERNET"u8.CopyTo(b);
                b[8] = FlashImage.Version; b[9] = 0; b[10] = FlashImage.HeaderSize; b[11] = 0; b[12] = FlashImage.LayerRecordSize; b[13] = 0;
                RepairCrcs(b);
            }
            return (false, b);
        })),
        (2, Gen.Int.Array[1, 3].Select(flips =>
        {
            var b = (byte[])Image.Value.Clone();
            foreach (int x in flips) b[(x & int.MaxValue) % b.Length] ^= (byte)(1 << (x >>> 28 & 7));
            return (!b.AsSpan().SequenceEqual(Image.Value), b); // two equal flips cancel
        })),
        (1, Gen.Int.Select(cut => (true, Image.Value[..((cut & int.MaxValue) % Image.Value.Length)]))),
        (3, Gen.Select(Gen.Int, Gen.Int[1, 8], Gen.Int, (where, width, value) =>
        {
            var b = (byte[])Image.Value.Clone();
            int tableEnd = FlashImage.HeaderSize + FlashImage.LayerRecordSize * BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(14));
            int at = (where & int.MaxValue) % (tableEnd - width);
            for (int i = 0; i < width; i++) b[at + i] = (value & 0x100) != 0 ? (byte)(value >> (8 * (i % 3))) : Extremes[(value & int.MaxValue) % Extremes.Length];
            RepairCrcs(b);
            return (false, b);
        })));

    [TestMethod]
    public void FlashImageOpenOnlyThrowsFlashImageException()
    {
        long opened = 0, rejected = 0;
        var clock = Stopwatch.StartNew();
        Gen.Select(Images, Gen.Bool).Sample((image, verify) =>
        {
            try
            {
                FlashImage.Open(new MemoryFlash(image.Bytes), verifySections: verify || image.MustFail);
                Interlocked.Increment(ref opened);
                Assert.IsFalse(image.MustFail, "a damaged image opened with every CRC verified");
            }
            catch (FlashImageException) { Interlocked.Increment(ref rejected); }
        }, iter: Iterations, print: x => $"{x.Item1.Bytes.Length} bytes, verify {x.Item2}");
        Report("FlashImage.Open", Iterations, clock, $"{opened:N0} opened, {rejected:N0} rejected with FlashImageException");
    }

    // ---- FlashImage.Open, then the planner, then the engine: images with any geometry ----

    /// <summary>
    /// Recomputes every layer's input and output shape from the input size, kernels, strides and paddings
    /// (conv output channels stay). Where they cannot chain (a kernel larger than its input) the reader must say so.
    /// </summary>
    internal static void ChainShapes(QModel m)
    {
        var shapes = new List<(int H, int W, int C)> { (m.InputH, m.InputW, m.InputC) };
        foreach (var l in m.Layers)
        {
            (l.InH, l.InW, l.InC) = shapes[l.Input0];
            (l.OutH, l.OutW) = l.Op switch
            {
                QOp.Conv or QOp.MaxPool => ((l.InH + l.PadTop + l.PadBottom - l.KernelH) / l.StrideH + 1, (l.InW + l.PadLeft + l.PadRight - l.KernelW) / l.StrideW + 1),
                QOp.GlobalAvgPool => (1, 1),
                _ => (l.InH, l.InW),
            };
            if (l.Op != QOp.Conv) l.OutC = l.InC;
            shapes.Add((l.OutH, l.OutW, l.OutC));
        }
    }

    /// <summary>The mini image with a <paramref name="size"/> x <paramref name="size"/> input and every shape chained from it: valid in every CRC.</summary>
    internal static byte[] MiniImageWithInput(int size)
    {
        var m = FlashImage.Open(new MemoryFlash(Image.Value)).LoadAll();
        m.InputH = m.InputW = m.Preprocessing.CropSize = size;
        m.Preprocessing.ResizeShorterSide = Math.Max(size, m.Preprocessing.ResizeShorterSide);
        ChainShapes(m);
        return FlashImageWriter.Pack(m).Bytes;
    }

    /// <summary>
    /// The mini network reshaped by <paramref name="seed"/>: any input size (now and then past the reader's
    /// limits), other kernels, strides and paddings, other inner channel counts; shapes re-chained layer to
    /// layer where they can be, weights redrawn to fit. Packed by the real writer, so every CRC is right and
    /// the reader's checks behind them run; sometimes a table field is set to an extreme value as well.
    /// </summary>
    static byte[] Reshaped(int seed)
    {
        var rng = new Random(seed);
        var m = FlashImage.Open(new MemoryFlash(Image.Value)).LoadAll();
        int Pick(params int[] values) => values[rng.Next(values.Length)];
        m.InputH = m.InputW = rng.Next(8) == 0 ? Pick(0, 1, 2, 700, 4096, 4097, 65535) : rng.Next(1, 97);
        if (rng.Next(16) == 0) m.InputW = rng.Next(1, 97); // the header's square crop no longer fits
        m.Preprocessing.CropSize = m.InputH;
        m.Preprocessing.ResizeShorterSide = Math.Max(m.Preprocessing.CropSize, m.Preprocessing.ResizeShorterSide);
        var L = m.Layers;
        int blockStride = 0; // a strided block's 1x1 A and its projection keep one stride, so the Add still chains
        for (int i = 0; i < L.Length; i++)
        {
            var l = L[i];
            bool stem = i < 2;
            if (l.Op is QOp.Conv or QOp.MaxPool && l.KernelH > 1 && rng.Next(3) == 0)
            {
                l.KernelH = l.KernelW = rng.Next(16) == 0 ? 17 : Pick(1, 2, 3, 5, 7);
                l.StrideH = l.StrideW = stem || rng.Next(8) == 0 ? Pick(1, 2, 3) : 1;
                l.PadTop = l.PadLeft = rng.Next(4) == 0 ? rng.Next(l.KernelH) : (l.KernelH - 1) / 2;
                l.PadBottom = l.PadRight = rng.Next(8) == 0 ? rng.Next(l.KernelH + 1) : l.KernelH - 1 - l.PadTop;
            }
            else if (l.Op == QOp.Conv && l.KernelH == 1 && l.StrideH > 1)
            {
                if (blockStride == 0) l.StrideH = l.StrideW = blockStride = rng.Next(3) == 0 ? Pick(1, 3) : l.StrideH;
                else
                {
                    l.StrideH = l.StrideW = rng.Next(16) == 0 ? 1 : blockStride;
                    blockStride = 0;
                }
            }
            // an inner channel count of a block: a 1x1 conv's output feeding the next conv
            if (l.Op == QOp.Conv && i + 1 < L.Length && L[i + 1].Op == QOp.Conv && L[i + 1].Input0 == i + 1 && rng.Next(4) == 0)
                l.OutC = rng.Next(1, 40);
        }
        ChainShapes(m);
        foreach (var l in L)
        {
            if (l.Op != QOp.Conv) continue;
            int max = rng.Next(2) == 0 ? (1 << (l.WeightBits - 1)) - 1 : 3; // small weights keep the int32 kernels in play
            l.Weights = new short[l.OutC * l.WeightStride];
            for (int c = 0; c < l.OutC; c++)
                for (int k = 0; k < l.ReduceSize; k++) l.Weights[c * l.WeightStride + k] = (short)rng.Next(-max, max + 1);
            if (l.Multipliers.Length != l.OutC)
            {
                l.Multipliers = Enumerable.Range(0, l.OutC).Select(_ => l.MultiplierBits == 0 ? 1 : rng.Next(1, 1 << (l.MultiplierBits - 1))).ToArray();
                l.Offsets = Enumerable.Range(0, l.OutC).Select(_ => rng.Next(-1000, 1000)).ToArray();
            }
            // A bound that holds for these weights and any int16 input: ReduceSize terms of |w| <= max times |x| <= 2^15, plus the sign.
            l.AccumulatorBits = Math.Min(64, 2 + (int)Math.Floor(Math.Log2((double)l.ReduceSize * max * 32768)));
        }
        var bytes = FlashImageWriter.Pack(m).Bytes;
        if (rng.Next(4) == 0)
        {
            int tableEnd = FlashImage.HeaderSize + FlashImage.LayerRecordSize * L.Length;
            int at = rng.Next(tableEnd - 2);
            bytes[at] = Extremes[rng.Next(Extremes.Length)];
            if (rng.Next(2) == 0) bytes[at + 1] = Extremes[rng.Next(Extremes.Length)];
            RepairCrcs(bytes);
        }
        return bytes;
    }

    [TestMethod]
    public void AnyGeometryIsRefusedByNameOrPlannedWithinBudgetAndRunsBitExact()
    {
        long opened = 0, rejected = 0, planned = 0, overBudget = 0, notResNet = 0, ran = 0;
        var clock = Stopwatch.StartNew();
        Gen.Select(Gen.Int, Gen.Int[0, 3]).Sample((seed, budgetKind) =>
        {
            var bytes = Reshaped(seed);
            FlashImage image;
            try { image = FlashImage.Open(new MemoryFlash(bytes), verifySections: (seed & 1) == 0); }
            catch (FlashImageException) { Interlocked.Increment(ref rejected); return; }
            Interlocked.Increment(ref opened);
            long budget = budgetKind switch { 0 => 1, 1 => 64 << 10, 2 => ExecutionPlan.DefaultRamBudgetBytes, _ => 64L << 20 };
            ExecutionPlan plan;
            try { plan = new ExecutionPlan(image.Model, ramBudgetBytes: budget); }
            catch (PlanException e) when (e.IsOverBudget)
            {
                Assert.IsGreaterThan(budget, e.SmallestRamBytes, "a plan refused for its budget must need more than the budget");
                Interlocked.Increment(ref overBudget);
                return;
            }
            catch (PlanException) { Interlocked.Increment(ref notResNet); return; }
            Interlocked.Increment(ref planned);
            Assert.IsLessThanOrEqualTo(budget, plan.RamBytes, "a plan over its budget");
            // Small enough to run here: the engine must match the reference simulator, its independent twin.
            if (image.Model.Macs > 3_000_000 || plan.RamBytes > 8 << 20) return;
            var model = FlashImage.Open(new MemoryFlash(bytes), verifySections: false).LoadAll();
            var rng = new Random(seed);
            var input = Enumerable.Range(0, model.InputSize).Select(_ => (short)rng.Next(-3000, 3000)).ToArray();
            var expected = new IntegerSimulator(model).Run(input);
            var logits = new InferenceEngine(image, plan).Run(input);
            CollectionAssert.AreEqual(expected, logits, $"seed {seed}: the engine differs from the simulator on {model.InputH}x{model.InputW}");
            Interlocked.Increment(ref ran);
        }, iter: Iterations, print: x => $"seed {x.Item1}, budget kind {x.Item2}");
        Report("reader + planner + engine", Iterations, clock,
            $"{rejected:N0} rejected by the reader, {opened:N0} opened; of those {overBudget:N0} refused over budget, {notResNet:N0} refused as not a ResNet, {planned:N0} planned; {ran:N0} run bit-exact against the simulator");
    }

    [TestMethod]
    public void ABudgetTheSearchMissesButTheSmallestPlanFitsGetsTheSmallestPlan()
    {
        // The geometry of CsCheck seed 2qVtq_a5UEj2 above (seed -734108, budget kind 1): RAM does not always fall with the
        // budget, and its 64 KiB budget was refused while the smallest plan needs less.
        var bytes = Reshaped(-734108);
        var image = FlashImage.Open(new MemoryFlash(bytes));
        const long budget = 64 << 10;
        var smallest = ExecutionPlan.Smallest(image.Model);
        Assert.IsLessThanOrEqualTo(budget, smallest.RamBytes, "this geometry no longer fits 64 KiB at all: pick another seed of the test above");
        var plan = new ExecutionPlan(image.Model, ramBudgetBytes: budget);
        Assert.AreEqual(smallest.RamBytes, plan.RamBytes, "the budget gets the smallest plan");
        Assert.AreEqual(smallest.Describe(), plan.Describe());
        var model = FlashImage.Open(new MemoryFlash(bytes), verifySections: false).LoadAll();
        var rng = new Random(1);
        var input = Enumerable.Range(0, model.InputSize).Select(_ => (short)rng.Next(-3000, 3000)).ToArray();
        using var engine = EngineHeap.New(image, plan);
        CollectionAssert.AreEqual(new IntegerSimulator(model).Run(input), engine.Run(input));
    }
}

/// <summary>A link made of a stream to read (the input) and one to write (the replies).</summary>
sealed class DuplexMemory(Stream input, Stream output) : Stream
{
    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);
    public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);
    public override void Flush() { }
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
