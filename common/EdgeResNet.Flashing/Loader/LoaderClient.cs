using EdgeResNet.Common;
using System.Buffers.Binary;
using EdgeResNet.Common.Signing;
using System.Diagnostics;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.Loader;

/// <summary>The board's answer to HELLO.</summary>
public sealed record HelloReply(ushort Version, long Capacity, long SlotSize, char? BootSlot, uint BootGeneration, bool SignedOnly, uint SecurityFloor);

/// <summary>Progress of <see cref="LoaderClient.Flash(byte[], IProgress{LoaderProgress}?)"/>: image bytes settled (skipped or written), bytes on the wire.</summary>
public readonly record struct LoaderProgress(long BytesDone, long BytesTotal, long BytesSent, int BlocksSkipped, int BlocksWritten, int Retries, double BytesPerSecond);

/// <summary>What a transfer did: the slot and generation it committed, and its traffic.</summary>
public sealed record LoaderResult(char Slot, uint Generation, long ImageLength, long BytesSent, int BlocksSkipped, int BlocksWritten, int DataFrames, int Retries, TimeSpan Elapsed)
{
    /// <summary>Bytes on the wire per second (host to board).</summary>
    public double BytesPerSecond => Elapsed > TimeSpan.Zero ? BytesSent / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// The host side of the serial loader (<see cref="Protocol"/>): HELLO, BEGIN, then per 64 KiB block (<see cref="BlockSize"/>)
/// a QUERY and, only if the board's CRC differs, the block's DATA frames, then COMMIT. Blocks
/// already right are skipped, so a transfer cut in the middle resumes when run again, and an
/// image that shares blocks with what the target slot holds sends only the difference. Each
/// request is resent (same seq) on a timeout, a garbled reply or a NAK crc, up to
/// <see cref="Retries"/> times. The link must support read timeouts (a serial port's stream does).
/// </summary>
public sealed class LoaderClient
{
    readonly Stream _link;
    readonly FrameReader _reader;
    // A random start, so a late reply from an earlier session on the same port cannot match.
    ushort _seq = (ushort)Random.Shared.Next(ushort.MaxValue + 1);
    int _retries, _dataFrames;
    long _bytesSent;

    public LoaderClient(Stream link)
    {
        if (!link.CanTimeout) throw new ArgumentException("the loader link must support read timeouts (a serial port's stream does)", nameof(link));
        _link = link;
        _reader = new FrameReader(link);
    }

    /// <summary>How long to wait for the reply to QUERY and DATA (a DATA may include a sector erase).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How long to wait for HELLO, BEGIN and COMMIT, for which the board reads whole slots.</summary>
    public TimeSpan LongTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Resends per request before giving up.</summary>
    public int Retries { get; init; } = 5;
    /// <summary>
    /// The unit the host QUERYs and skips when the board already holds it: 64 KiB (a NOR block) by
    /// default; smaller blocks resume more finely at the cost of more QUERY round trips.
    /// </summary>
    public int BlockSize
    {
        get => _blockSize;
        init => _blockSize = value > 0 && value % Protocol.ChunkSize == 0 && value <= Protocol.MaxQueryLength ? value
            : throw new ArgumentOutOfRangeException(nameof(BlockSize), value, $"a multiple of {Protocol.ChunkSize} up to {Protocol.MaxQueryLength}");
    }
    int _blockSize = Protocol.BlockSize;

    public static LoaderResult Flash(Stream link, byte[] image, IProgress<LoaderProgress>? progress = null) => new LoaderClient(link).Flash(image, progress);
    public static LoaderResult Flash(Stream link, Stream image, IProgress<LoaderProgress>? progress = null) => new LoaderClient(link).Flash(image, progress);

    /// <summary>Reads the whole image first: BEGIN needs its CRC, and a host has the RAM for it.</summary>
    public LoaderResult Flash(Stream image, IProgress<LoaderProgress>? progress = null)
    {
        var copy = new MemoryStream();
        image.CopyTo(copy);
        return Flash(copy.ToArray(), progress);
    }

    public LoaderResult Flash(byte[] image, IProgress<LoaderProgress>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        _retries = _dataFrames = 0;
        _bytesSent = 0;
        var hello = Hello();
        long max = SlotStore.MaxImageLengthFor(hello.SlotSize);
        // Said here as well as by the board, before BEGIN erases anything.
        if (image.Length > max)
            throw new LoaderException(LoaderError.TooLarge, $"the image is {image.Length:N0} bytes but a slot on this board holds at most {max:N0} (flash of {hello.Capacity:N0} bytes split into slots A and B)");

        // A signed image sends its manifest first: the board verifies it before BEGIN erases anything.
        var manifest = ImageSigning.ReadBlock(image);
        if (manifest is null && hello.SignedOnly)
            throw new LoaderException(LoaderError.Unauthenticated, "the board takes only signed images and this one is not signed: sign it with `edgeresnet sign IMG --key KEY --counter N`");
        if (manifest is not null && hello.SignedOnly && manifest.SecurityCounter < hello.SecurityFloor)
            throw new LoaderException(LoaderError.Rollback, $"the image's security counter {manifest.SecurityCounter} is below the {hello.SecurityFloor} of the image the board boots: a downgrade, which the board refuses; sign it again with --counter {hello.SecurityFloor} or higher");
        if (manifest is not null) Request(FrameType.Manifest, manifest.Encode(), 1, LongTimeout, "MANIFEST");

        uint crc = Crc32.Append(0, image);
        var begin = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(begin, (uint)image.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(begin.AsSpan(4), crc);
        byte slot = Request(FrameType.Begin, begin, 1, LongTimeout, "BEGIN")[0];
        if (slot != 'A' && slot != 'B') throw new DeviceException($"the board answered BEGIN with slot 0x{slot:X2}, not A or B");

        int skipped = 0, written = 0;
        var query = new byte[8];
        var data = new byte[4 + Protocol.ChunkSize];
        for (int block = 0; block < image.Length; block += BlockSize)
        {
            int n = Math.Min(BlockSize, image.Length - block);
            BinaryPrimitives.WriteUInt32LittleEndian(query, (uint)block);
            BinaryPrimitives.WriteUInt32LittleEndian(query.AsSpan(4), (uint)n);
            uint boardCrc = BinaryPrimitives.ReadUInt32LittleEndian(Request(FrameType.Query, query, 4, Timeout, $"QUERY at {block:N0}"));
            if (boardCrc == Crc32.Append(0, image.AsSpan(block, n))) skipped++;
            else
            {
                for (int chunk = block; chunk < block + n; chunk += Protocol.ChunkSize)
                {
                    int m = Math.Min(Protocol.ChunkSize, block + n - chunk);
                    BinaryPrimitives.WriteUInt32LittleEndian(data, (uint)chunk);
                    image.AsSpan(chunk, m).CopyTo(data.AsSpan(4));
                    Request(FrameType.Data, data.AsSpan(0, 4 + m), 1, Timeout, $"DATA at {chunk:N0}");
                    _dataFrames++;
                }
                written++;
            }
            progress?.Report(new LoaderProgress(block + n, image.Length, _bytesSent, skipped, written, _retries, _bytesSent / Math.Max(clock.Elapsed.TotalSeconds, 1e-6)));
        }

        uint generation = BinaryPrimitives.ReadUInt32LittleEndian(Request(FrameType.Commit, [], 4, LongTimeout, "COMMIT"));
        return new LoaderResult((char)slot, generation, image.Length, _bytesSent, skipped, written, _dataFrames, _retries, clock.Elapsed);
    }

    public HelloReply Hello()
    {
        // A host cut off mid-frame (cable pulled) leaves the board's reader waiting for the rest of that
        // frame; a frame's worth of zeros completes it (its CRC fails, the board hunts for the next sync)
        // so this HELLO is seen. On an idle link the zeros are simply skipped.
        Send(new byte[Protocol.MaxFrameSize], "HELLO", countBytes: false);
        var version = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(version, Protocol.Version);
        var r = Request(FrameType.Hello, version, Protocol.HelloReplySize, LongTimeout, "HELLO");
        char? boot = r[18] == 0 ? null : (char)r[18];
        return new HelloReply(BinaryPrimitives.ReadUInt16LittleEndian(r), (long)BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(2)),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(10)), boot, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(19)),
            r[23] == 1, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(24)));
    }

    /// <summary>Sends a request and returns its ACK payload; resends on timeout, garbled reply or NAK crc; throws on any other NAK.</summary>
    byte[] Request(FrameType type, ReadOnlySpan<byte> payload, int replyLength, TimeSpan timeout, string what)
    {
        ushort seq = _seq++;
        var frame = Protocol.Encode(type, seq, payload);
        string problem = "";
        _link.ReadTimeout = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
        for (int attempt = 0; attempt <= Retries; attempt++)
        {
            if (attempt > 0) _retries++;
            Send(frame, what);
            var reply = AwaitReply(seq, replyLength, timeout, what, ref problem);
            if (reply is not null) return reply;
        }
        throw new DeviceException($"the board did not answer {what} after {Retries} retries: {problem}; check the cable, the baud rate and that the loader runs on the board");
    }

    void Send(byte[] bytes, string what, bool countBytes = true)
    {
        try
        {
            _link.Write(bytes);
            _link.Flush();
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException)
        {
            throw new DeviceException($"the serial link failed while sending {what} ({e.Message}); was the adapter unplugged?", e);
        }
        if (countBytes) _bytesSent += bytes.Length;
    }

    byte[]? AwaitReply(ushort seq, int replyLength, TimeSpan timeout, string what, ref string problem)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            Frame f;
            try { f = _reader.ReadFrame(); }
            catch (TimeoutException) { problem = $"no reply within {timeout.TotalSeconds:0.###} s"; return null; }
            catch (ProtocolException e) { problem = "garbled reply: " + e.Message; return null; }
            catch (EndOfStreamException e) { throw new DeviceException($"the link closed while waiting for the reply to {what}", e); }
            catch (Exception e) when (e is IOException or InvalidOperationException) { throw new DeviceException($"the serial link failed while waiting for the reply to {what} ({e.Message}); was the adapter unplugged?", e); }

            if (f.Seq != seq) continue; // a late reply to an earlier attempt: its request was answered already
            var p = f.Payload.Span;
            if (f.Type == FrameType.Nak && p.Length >= 1)
            {
                var code = (LoaderError)p[0];
                string message = System.Text.Encoding.UTF8.GetString(p.Slice(1));
                if (code == LoaderError.Crc) { problem = "the board received a corrupt frame"; return null; }
                throw new LoaderException(code, $"the board refused {what}: {message}");
            }
            if (f.Type != FrameType.Ack || p.Length != replyLength)
            {
                problem = $"malformed reply (type 0x{(byte)f.Type:X2}, {p.Length} bytes)";
                return null;
            }
            return p.ToArray();
        }
        problem = $"no valid reply within {timeout.TotalSeconds:0.###} s";
        return null;
    }
}
