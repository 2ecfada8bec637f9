using System.Buffers.Binary;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Flashing.Loader;

/// <summary>
/// The serial loader protocol (version 2; docs/serial-protocol.md has the full description).
/// <para>Every frame, both ways: <c>0xA5 0x5A | type u8 | seq u16 | length u16 | payload | CRC-32 u32</c>,
/// little-endian, the CRC (the runtime's <see cref="Crc32"/>) over type..payload, payload at most
/// <see cref="MaxPayload"/> bytes. The host sends one request and waits for its reply, which
/// carries the same seq: an ACK with the reply payload, or a NAK with an error code and a UTF-8 message.</para>
/// <list type="table">
/// <item><term>HELLO</term><description>u16 protocol version → u16 version, u64 capacity, u64 slot size, u8 boot slot ('A', 'B' or 0), u32 boot generation, u8 flags (1: signed images only), u32 anti-rollback floor (SlotStore.SecurityFloor)</description></item>
/// <item><term>MANIFEST</term><description>the image's 128-byte signature block → u8 1 if verified with a trusted key, 0 if the board trusts none (sent before BEGIN, which it authorises)</description></item>
/// <item><term>BEGIN</term><description>u32 image length, u32 image CRC → u8 target slot (the board erases the target's commit record)</description></item>
/// <item><term>QUERY</term><description>u32 offset, u32 length (≤ 1 MiB) → u32 CRC-32 of the target slot's image bytes there (the host skips blocks already right)</description></item>
/// <item><term>DATA</term><description>u32 offset (a multiple of 4096), 1..4096 image bytes → u8 what the sector needed (0 nothing, 1 program, 2 erase + program)</description></item>
/// <item><term>COMMIT</term><description>(empty) → u32 generation, once the board has checked the whole image</description></item>
/// </list>
/// <para>Every request is idempotent, so the host resends on a timeout, a garbled reply or a NAK
/// <see cref="LoaderError.Crc"/> (the board got a corrupt frame) with the same seq, and ignores
/// replies whose seq is not the one it waits for.</para>
/// </summary>
public static class Protocol
{
    /// <summary>2: HELLO reports the signature requirement and security counter; MANIFEST.</summary>
    public const ushort Version = 2;
    /// <summary>Bytes of the HELLO reply.</summary>
    public const int HelloReplySize = 28;
    public const byte Sync0 = 0xA5, Sync1 = 0x5A;
    /// <summary>Sync (2) + type (1) + seq (2) + length (2).</summary>
    public const int HeaderSize = 7;
    public const int CrcSize = 4;
    /// <summary>Image bytes per DATA frame: one 4 KiB flash sector.</summary>
    public const int ChunkSize = NorGeometry.SectorSize;
    /// <summary>A DATA chunk plus its offset, with room to spare for future fields.</summary>
    public const int MaxPayload = ChunkSize + 64;
    public const int MaxFrameSize = HeaderSize + MaxPayload + CrcSize;
    /// <summary>The host's QUERY unit: one 64 KiB NOR block.</summary>
    public const int BlockSize = NorGeometry.BlockSize;
    /// <summary>The longest QUERY range, so that one request has a bounded duration on the board.</summary>
    public const int MaxQueryLength = 1024 * 1024;

    /// <summary>One whole frame as bytes, written with a single Write call.</summary>
    public static byte[] Encode(FrameType type, ushort seq, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxPayload) throw new ArgumentException($"payload of {payload.Length} bytes exceeds {MaxPayload}");
        var f = new byte[HeaderSize + payload.Length + CrcSize];
        f[0] = Sync0; f[1] = Sync1; f[2] = (byte)type;
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(3), seq);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(5), (ushort)payload.Length);
        payload.CopyTo(f.AsSpan(HeaderSize));
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(HeaderSize + payload.Length), Crc32.Append(0, f.AsSpan(2, HeaderSize - 2 + payload.Length)));
        return f;
    }

    public static void Write(Stream link, FrameType type, ushort seq, ReadOnlySpan<byte> payload)
    {
        link.Write(Encode(type, seq, payload));
        link.Flush();
    }

    /// <summary>A NAK payload: the code, then the message in UTF-8 (cut to fit a frame).</summary>
    public static byte[] NakPayload(LoaderError code, string message)
    {
        var text = System.Text.Encoding.UTF8.GetBytes(message);
        var p = new byte[1 + Math.Min(text.Length, MaxPayload - 1)];
        p[0] = (byte)code;
        text.AsSpan(0, p.Length - 1).CopyTo(p.AsSpan(1));
        return p;
    }
}

public enum FrameType : byte
{
    Hello = 0x01,
    Begin = 0x02,
    Query = 0x03,
    Data = 0x04,
    Commit = 0x05,
    Manifest = 0x06,
    Ack = 0x80,
    Nak = 0x81,
}

/// <summary>A corrupt frame on the link: bad CRC, impossible length, a malformed reply. The reader has already skipped past it.</summary>
public sealed class ProtocolException(string message, ushort? seq = null) : Exception(message)
{
    /// <summary>The seq in the corrupt frame's header, if one was read (it may itself be corrupt).</summary>
    public ushort? Seq { get; } = seq;
}

/// <summary>A received frame. <see cref="Payload"/> points into the reader's buffer: valid until the next <see cref="FrameReader.ReadFrame"/>.</summary>
public readonly record struct Frame(FrameType Type, ushort Seq, ReadOnlyMemory<byte> Payload);

/// <summary>
/// Parses frames from a byte stream: hunts for the sync bytes, rejects impossible lengths and bad
/// CRCs. It holds one fixed buffer of two maximal frames and never allocates per frame. After a
/// rejected frame it drops only the first sync byte and hunts again, so a real frame that
/// started inside the bad one's bytes (a corrupted length swallowed it) is still found.
/// Throws only <see cref="ProtocolException"/> (one per rejected frame; call again to go on),
/// <see cref="EndOfStreamException"/> (the stream ended), and what the stream throws
/// (<see cref="TimeoutException"/> on a read timeout, <see cref="IOException"/>).
/// </summary>
public sealed class FrameReader(Stream stream)
{
    readonly byte[] _buffer = new byte[2 * Protocol.MaxFrameSize];
    int _start, _end;

    public Stream Stream { get; } = stream;
    /// <summary>Bytes skipped while hunting for a frame (line noise, corrupt frames).</summary>
    public long BytesDiscarded { get; private set; }

    public Frame ReadFrame()
    {
        while (true)
        {
            // Hunt: drop everything before the first A5 5A; keep a trailing A5, it may be half a sync.
            int sync = _buffer.AsSpan(_start, _end - _start).IndexOf([Protocol.Sync0, Protocol.Sync1]);
            if (sync < 0)
            {
                int keep = _end > _start && _buffer[_end - 1] == Protocol.Sync0 ? 1 : 0;
                Discard(_end - _start - keep);
                Fill();
                continue;
            }
            Discard(sync);
            if (_end - _start < Protocol.HeaderSize) { Fill(); continue; }

            var f = _buffer.AsSpan(_start);
            var type = (FrameType)f[2];
            ushort seq = BinaryPrimitives.ReadUInt16LittleEndian(f.Slice(3));
            int length = BinaryPrimitives.ReadUInt16LittleEndian(f.Slice(5));
            if (length > Protocol.MaxPayload)
            {
                Discard(1);
                throw new ProtocolException($"frame length {length} exceeds {Protocol.MaxPayload}", seq);
            }
            int total = Protocol.HeaderSize + length + Protocol.CrcSize;
            if (_end - _start < total) { Fill(); continue; }

            uint stored = BinaryPrimitives.ReadUInt32LittleEndian(f.Slice(Protocol.HeaderSize + length));
            uint computed = Crc32.Append(0, f.Slice(2, Protocol.HeaderSize - 2 + length));
            if (stored != computed)
            {
                Discard(1);
                throw new ProtocolException($"frame CRC mismatch (stored {stored:x8}, computed {computed:x8})", seq);
            }
            var frame = new Frame(type, seq, new ReadOnlyMemory<byte>(_buffer, _start + Protocol.HeaderSize, length));
            _start += total;
            return frame;
        }
    }

    void Discard(int n)
    {
        _start += n;
        BytesDiscarded += n;
    }

    /// <summary>Reads more bytes; moves the unread ones to the front first when the tail has no room for a whole frame.</summary>
    void Fill()
    {
        if (_buffer.Length - _start < Protocol.MaxFrameSize || _start == _end)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        int n = Stream.Read(_buffer, _end, _buffer.Length - _end);
        if (n <= 0)
            throw new EndOfStreamException(_end > _start ? $"the link closed inside a frame ({_end - _start} bytes unread)" : "the link closed");
        _end += n;
    }
}
