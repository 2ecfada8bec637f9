using EdgeResNet.Common;
using EdgeResNet.Common.Signing;
using System.Buffers.Binary;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.Loader;

/// <summary>
/// The board side of the serial loader (<see cref="Protocol"/>): reads requests from the link and
/// answers each with an ACK or a NAK, writing images through <see cref="SlotStore"/>. A corrupt
/// frame gets NAK <see cref="LoaderError.Crc"/> so the host resends; every request is idempotent,
/// so a duplicate (the host resent because our reply was lost) does no harm.
/// </summary>
public sealed class LoaderServer(SlotStore store, Stream link)
{
    readonly FrameReader _reader = new(link);

    public SlotStore Store { get; } = store;
    public long FramesReceived { get; private set; }
    public long CorruptFrames { get; private set; }
    /// <summary>Called with one line per notable event (begin, commit, refusals), for the board's log.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Once a host has sent a frame, a silence this long ends the session (<see cref="TimeoutException"/>), so a vanished host cannot hold the loader. Null: wait for ever.</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>
    /// Answers requests until the link closes (end of stream). Link errors (<see cref="IOException"/>)
    /// and, after <see cref="IdleTimeout"/> of silence, <see cref="TimeoutException"/> propagate.
    /// </summary>
    public void Run()
    {
        Store.BeginSession();
        while (true)
        {
            Frame request;
            try { request = _reader.ReadFrame(); }
            catch (EndOfStreamException) { return; }
            catch (ProtocolException e)
            {
                CorruptFrames++;
                // The seq may be corrupt too; the host ignores a NAK that does not carry its seq and times out instead.
                Protocol.Write(link, FrameType.Nak, e.Seq ?? 0, Protocol.NakPayload(LoaderError.Crc, "crc: " + e.Message));
                continue;
            }
            finally
            {
                // Before the first frame the loader waits for a host as long as it takes; after it, a session has a deadline.
                if (IdleTimeout is { } idle && link.CanTimeout && link.ReadTimeout == Timeout.Infinite)
                    link.ReadTimeout = (int)idle.TotalMilliseconds;
            }
            FramesReceived++;
            byte[] reply;
            FrameType type = FrameType.Ack;
            try { reply = Handle(request); }
            catch (Exception e) when (e is LoaderException or DeviceException or FlashImageException or SignatureException or IOException or ArgumentException)
            {
                var code = e is LoaderException l ? l.Code : LoaderError.Device;
                Log?.Invoke($"{request.Type} refused: {e.Message}");
                type = FrameType.Nak;
                reply = Protocol.NakPayload(code, e.Message);
            }
            Protocol.Write(link, type, request.Seq, reply);
        }
    }

    byte[] Handle(Frame request)
    {
        var p = request.Payload.Span;
        switch (request.Type)
        {
            case FrameType.Hello:
            {
                Expect(p, 2, "HELLO");
                ushort version = BinaryPrimitives.ReadUInt16LittleEndian(p);
                if (version != Protocol.Version)
                    throw new LoaderException(LoaderError.Version, $"the host speaks loader protocol {version}, this board {Protocol.Version}; use matching tools");
                var boot = Store.FindBoot();
                var r = new byte[Protocol.HelloReplySize];
                BinaryPrimitives.WriteUInt16LittleEndian(r, Protocol.Version);
                BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(2), (ulong)Store.Capacity);
                BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(10), (ulong)Store.SlotSize);
                r[18] = (byte)(boot?.Slot ?? '\0');
                BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(19), boot?.Record?.Generation ?? 0);
                r[23] = (byte)(Store.RequiresSignature ? 1 : 0);
                BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(24), Store.SecurityFloor);
                return r;
            }
            case FrameType.Manifest:
            {
                Expect(p, SignatureBlock.Size, "MANIFEST");
                var manifest = SignatureBlock.Decode(p, out string reason) ?? throw new LoaderException(LoaderError.BadRequest, "MANIFEST: " + reason);
                bool verified = Store.Authorize(manifest);
                Log?.Invoke(verified ? $"manifest verified: key {manifest.KeyIdHex}, security counter {manifest.SecurityCounter}, {manifest.ImageLength:N0}-byte image"
                    : "manifest taken unchecked: this board trusts no key");
                return [(byte)(verified ? 1 : 0)];
            }
            case FrameType.Begin:
            {
                Expect(p, 8, "BEGIN");
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(p), crc = BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(4));
                char slot = Store.BeginWrite(length, crc);
                Log?.Invoke($"writing a {length:N0}-byte image (CRC {crc:x8}) into slot {slot}");
                return [(byte)slot];
            }
            case FrameType.Query:
            {
                Expect(p, 8, "QUERY");
                uint offset = BinaryPrimitives.ReadUInt32LittleEndian(p), length = BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(4));
                if (length > Protocol.MaxQueryLength) throw new LoaderException(LoaderError.Range, $"QUERY of {length:N0} bytes exceeds {Protocol.MaxQueryLength:N0}");
                var r = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(r, Store.QueryCrc(offset, length));
                return r;
            }
            case FrameType.Data:
            {
                if (p.Length < 5 || p.Length > 4 + Protocol.ChunkSize) throw new LoaderException(LoaderError.BadRequest, $"DATA payload of {p.Length} bytes, expected 5..{4 + Protocol.ChunkSize}");
                uint offset = BinaryPrimitives.ReadUInt32LittleEndian(p);
                return [(byte)Store.WriteData(offset, p.Slice(4))];
            }
            case FrameType.Commit:
            {
                Expect(p, 0, "COMMIT");
                uint generation = Store.Commit();
                Log?.Invoke($"slot {Store.Target} committed as generation {generation}");
                var r = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(r, generation);
                return r;
            }
            default:
                throw new LoaderException(LoaderError.BadRequest, $"unknown request type 0x{(byte)request.Type:X2}");
        }
    }

    static void Expect(ReadOnlySpan<byte> payload, int length, string what)
    {
        if (payload.Length != length) throw new LoaderException(LoaderError.BadRequest, $"{what} payload of {payload.Length} bytes, expected {length}");
    }
}
