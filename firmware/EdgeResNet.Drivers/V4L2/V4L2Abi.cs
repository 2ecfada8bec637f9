using System.Runtime.InteropServices;

namespace EdgeResNet.Drivers.V4L2;

// The Linux V4L2 user-space ABI as this driver uses it, for 64-bit Linux (LP64: long and pointers are 8 bytes).
// Every struct has an explicit layout; every size, field offset, ioctl number and constant below is listed in
// V4L2Abi.Layout(), and tests/EdgeResNet.Tests/V4L2LayoutTests.cs compares that list with what gcc computes
// from <linux/videodev2.h> (and <poll.h>, <fcntl.h>, <sys/mman.h>, <errno.h>, <sys/time.h>), in both directions.
// Char arrays are represented by their first byte (e.g. Driver0) and read as a span of the C length.

/// <summary><c>struct v4l2_capability</c> (VIDIOC_QUERYCAP).</summary>
[StructLayout(LayoutKind.Explicit, Size = 104)]
internal struct V4l2Capability
{
    public const int DriverLength = 16, CardLength = 32, BusInfoLength = 32;
    [FieldOffset(0)] public byte Driver0;     // __u8 driver[16]
    [FieldOffset(16)] public byte Card0;      // __u8 card[32]
    [FieldOffset(48)] public byte BusInfo0;   // __u8 bus_info[32]
    [FieldOffset(80)] public uint Version;
    [FieldOffset(84)] public uint Capabilities;
    [FieldOffset(88)] public uint DeviceCaps;
    // __u32 reserved[3] at 92
}

/// <summary><c>struct v4l2_pix_format</c> (the single-planar member of v4l2_format.fmt).</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
internal struct V4l2PixFormat
{
    [FieldOffset(0)] public uint Width;
    [FieldOffset(4)] public uint Height;
    [FieldOffset(8)] public uint PixelFormat;
    [FieldOffset(12)] public uint Field;
    [FieldOffset(16)] public uint BytesPerLine;
    [FieldOffset(20)] public uint SizeImage;
    [FieldOffset(24)] public uint Colorspace;
    // priv, flags, ycbcr_enc/hsv_enc, quantization, xfer_func follow; left zero
}

/// <summary><c>struct v4l2_format</c> (VIDIOC_S_FMT). The fmt union holds pointers (v4l2_window), so it is 8-aligned at offset 8, 200 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 208)]
internal struct V4l2Format
{
    [FieldOffset(0)] public uint Type;
    [FieldOffset(8)] public V4l2PixFormat Pix;   // fmt.pix
}

/// <summary><c>struct v4l2_fmtdesc</c> (VIDIOC_ENUM_FMT).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct V4l2FmtDesc
{
    public const int DescriptionLength = 32;
    [FieldOffset(0)] public uint Index;
    [FieldOffset(4)] public uint Type;
    [FieldOffset(8)] public uint Flags;
    [FieldOffset(12)] public byte Description0;  // __u8 description[32]
    [FieldOffset(44)] public uint PixelFormat;
}

/// <summary><c>struct v4l2_requestbuffers</c> (VIDIOC_REQBUFS).</summary>
[StructLayout(LayoutKind.Explicit, Size = 20)]
internal struct V4l2RequestBuffers
{
    [FieldOffset(0)] public uint Count;
    [FieldOffset(4)] public uint Type;
    [FieldOffset(8)] public uint Memory;
    [FieldOffset(12)] public uint Capabilities;
    [FieldOffset(16)] public byte Flags;
}

/// <summary><c>struct timeval</c> on LP64: two longs.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal struct TimeVal
{
    [FieldOffset(0)] public long Seconds;        // tv_sec
    [FieldOffset(8)] public long Microseconds;   // tv_usec
}

/// <summary><c>struct v4l2_timecode</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal struct V4l2Timecode
{
    [FieldOffset(0)] public uint Type;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public byte Frames;
    [FieldOffset(9)] public byte Seconds;
    [FieldOffset(10)] public byte Minutes;
    [FieldOffset(11)] public byte Hours;
    [FieldOffset(12)] public byte UserBits0;     // __u8 userbits[4]
}

/// <summary>The <c>m</c> union of struct v4l2_buffer.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
internal struct V4l2BufferM
{
    [FieldOffset(0)] public uint Offset;         // MMAP: the offset to pass to mmap
    [FieldOffset(0)] public ulong UserPtr;       // unsigned long
    [FieldOffset(0)] public int Fd;              // DMABUF
}

/// <summary><c>struct v4l2_buffer</c> (VIDIOC_QUERYBUF, VIDIOC_QBUF, VIDIOC_DQBUF), single-planar.</summary>
[StructLayout(LayoutKind.Explicit, Size = 88)]
internal struct V4l2Buffer
{
    [FieldOffset(0)] public uint Index;
    [FieldOffset(4)] public uint Type;
    [FieldOffset(8)] public uint BytesUsed;
    [FieldOffset(12)] public uint Flags;
    [FieldOffset(16)] public uint Field;
    [FieldOffset(24)] public TimeVal Timestamp;
    [FieldOffset(40)] public V4l2Timecode Timecode;
    [FieldOffset(56)] public uint Sequence;
    [FieldOffset(60)] public uint Memory;
    [FieldOffset(64)] public V4l2BufferM M;
    [FieldOffset(72)] public uint Length;
    [FieldOffset(76)] public uint Reserved2;
    [FieldOffset(80)] public int RequestFd;
}

/// <summary><c>struct pollfd</c> from &lt;poll.h&gt;.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
internal struct PollFd
{
    [FieldOffset(0)] public int Fd;
    [FieldOffset(4)] public short Events;
    [FieldOffset(6)] public short REvents;
}

/// <summary>
/// The V4L2 and libc numbers this driver uses (64-bit Linux with the generic ioctl encoding: x86-64, arm64,
/// riscv64, loongarch64), and <see cref="Layout"/>: every struct size, field offset, ioctl number and constant
/// the driver relies on, by its C name, so a test can check each against the kernel headers with gcc.
/// </summary>
public static class V4L2Abi
{
    // ioctl encoding, include/uapi/asm-generic/ioctl.h: nr 8 bits, type 8 bits, size 14 bits, direction 2 bits.
    const int IocNrShift = 0, IocTypeShift = 8, IocSizeShift = 16, IocDirShift = 30;
    const uint IocWrite = 1, IocRead = 2;

    static uint Ioc(uint dir, char type, uint nr, int size)
    {
        if (size < 0 || size >= 1 << 14) throw new ArgumentOutOfRangeException(nameof(size));
        return dir << IocDirShift | (uint)size << IocSizeShift | (uint)type << IocTypeShift | nr << IocNrShift;
    }
    static uint IoR<T>(char type, uint nr) where T : struct => Ioc(IocRead, type, nr, Marshal.SizeOf<T>());
    static uint IoW<T>(char type, uint nr) where T : struct => Ioc(IocWrite, type, nr, Marshal.SizeOf<T>());
    static uint IoWR<T>(char type, uint nr) where T : struct => Ioc(IocRead | IocWrite, type, nr, Marshal.SizeOf<T>());

    /// <summary>The kernel's v4l2_fourcc: a | b &lt;&lt; 8 | c &lt;&lt; 16 | d &lt;&lt; 24.</summary>
    public static uint FourCC(char a, char b, char c, char d) => (uint)a | (uint)b << 8 | (uint)c << 16 | (uint)d << 24;

    /// <summary>A fourcc as its four characters ("YUYV", "MJPG"); a big-endian variant gets a "-BE" suffix.</summary>
    public static string FourCCName(uint code)
    {
        Span<char> c = stackalloc char[4];
        for (int i = 0; i < 4; i++)
        {
            char ch = (char)((code >> (8 * i)) & (i == 3 ? 0x7Fu : 0xFFu));
            c[i] = ch >= ' ' && ch < 0x7F ? ch : '?';
        }
        return new string(c).TrimEnd() + ((code & 0x8000_0000u) != 0 ? "-BE" : "");
    }

    internal static readonly uint VIDIOC_QUERYCAP = IoR<V4l2Capability>('V', 0);
    internal static readonly uint VIDIOC_ENUM_FMT = IoWR<V4l2FmtDesc>('V', 2);
    internal static readonly uint VIDIOC_S_FMT = IoWR<V4l2Format>('V', 5);
    internal static readonly uint VIDIOC_REQBUFS = IoWR<V4l2RequestBuffers>('V', 8);
    internal static readonly uint VIDIOC_QUERYBUF = IoWR<V4l2Buffer>('V', 9);
    internal static readonly uint VIDIOC_QBUF = IoWR<V4l2Buffer>('V', 15);
    internal static readonly uint VIDIOC_DQBUF = IoWR<V4l2Buffer>('V', 17);
    internal static readonly uint VIDIOC_STREAMON = IoW<int>('V', 18);
    internal static readonly uint VIDIOC_STREAMOFF = IoW<int>('V', 19);

    internal static readonly uint V4L2_PIX_FMT_RGB24 = FourCC('R', 'G', 'B', '3');
    internal static readonly uint V4L2_PIX_FMT_BGR24 = FourCC('B', 'G', 'R', '3');
    internal static readonly uint V4L2_PIX_FMT_RGB565 = FourCC('R', 'G', 'B', 'P');
    internal static readonly uint V4L2_PIX_FMT_YUYV = FourCC('Y', 'U', 'Y', 'V');
    internal static readonly uint V4L2_PIX_FMT_GREY = FourCC('G', 'R', 'E', 'Y');

    internal const uint V4L2_CAP_VIDEO_CAPTURE = 0x00000001;
    internal const uint V4L2_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000;
    internal const uint V4L2_CAP_STREAMING = 0x04000000;
    internal const uint V4L2_CAP_DEVICE_CAPS = 0x80000000;
    internal const uint V4L2_BUF_TYPE_VIDEO_CAPTURE = 1;
    internal const uint V4L2_MEMORY_MMAP = 1;
    internal const uint V4L2_FIELD_NONE = 1;
    internal const uint V4L2_BUF_FLAG_ERROR = 0x00000040;

    // libc (glibc / musl on the architectures above)
    internal const int O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    internal const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
    internal const short POLLIN = 1, POLLERR = 8, POLLHUP = 0x10;
    internal const int ENOENT = 2, EINTR = 4, ENXIO = 6, EAGAIN = 11, EACCES = 13, EBUSY = 16, ENODEV = 19, EINVAL = 22, ENOTTY = 25;

    /// <summary>
    /// Every ABI number the driver uses, by C name: <c>sizeof.S</c> for struct sizes, <c>S.field</c> (or
    /// <c>S.a.b</c>) for field offsets, and the macro name for ioctl numbers and constants. Sizes and offsets are
    /// taken from the structs themselves (Marshal.SizeOf / Marshal.OffsetOf), so this table is what the code uses.
    /// </summary>
    public static IReadOnlyList<(string Name, long Value)> Layout()
    {
        var t = new List<(string, long)>();
        void Size<T>(string c) where T : struct => t.Add(("sizeof." + c, Marshal.SizeOf<T>()));
        void Off<T>(string c, string field, long extra = 0) where T : struct => t.Add((c, (long)Marshal.OffsetOf<T>(field) + extra));

        Size<V4l2Capability>("v4l2_capability");
        Off<V4l2Capability>("v4l2_capability.driver", nameof(V4l2Capability.Driver0));
        Off<V4l2Capability>("v4l2_capability.card", nameof(V4l2Capability.Card0));
        Off<V4l2Capability>("v4l2_capability.bus_info", nameof(V4l2Capability.BusInfo0));
        Off<V4l2Capability>("v4l2_capability.version", nameof(V4l2Capability.Version));
        Off<V4l2Capability>("v4l2_capability.capabilities", nameof(V4l2Capability.Capabilities));
        Off<V4l2Capability>("v4l2_capability.device_caps", nameof(V4l2Capability.DeviceCaps));
        t.Add(("sizeof.v4l2_capability.driver", V4l2Capability.DriverLength));
        t.Add(("sizeof.v4l2_capability.card", V4l2Capability.CardLength));
        t.Add(("sizeof.v4l2_capability.bus_info", V4l2Capability.BusInfoLength));

        Size<V4l2PixFormat>("v4l2_pix_format");
        Off<V4l2PixFormat>("v4l2_pix_format.width", nameof(V4l2PixFormat.Width));
        Off<V4l2PixFormat>("v4l2_pix_format.height", nameof(V4l2PixFormat.Height));
        Off<V4l2PixFormat>("v4l2_pix_format.pixelformat", nameof(V4l2PixFormat.PixelFormat));
        Off<V4l2PixFormat>("v4l2_pix_format.field", nameof(V4l2PixFormat.Field));
        Off<V4l2PixFormat>("v4l2_pix_format.bytesperline", nameof(V4l2PixFormat.BytesPerLine));
        Off<V4l2PixFormat>("v4l2_pix_format.sizeimage", nameof(V4l2PixFormat.SizeImage));
        Off<V4l2PixFormat>("v4l2_pix_format.colorspace", nameof(V4l2PixFormat.Colorspace));

        Size<V4l2Format>("v4l2_format");
        Off<V4l2Format>("v4l2_format.type", nameof(V4l2Format.Type));
        Off<V4l2Format>("v4l2_format.fmt.pix", nameof(V4l2Format.Pix));
        t.Add(("sizeof.v4l2_format.fmt", Marshal.SizeOf<V4l2Format>() - Marshal.OffsetOf<V4l2Format>(nameof(V4l2Format.Pix))));

        Size<V4l2FmtDesc>("v4l2_fmtdesc");
        Off<V4l2FmtDesc>("v4l2_fmtdesc.index", nameof(V4l2FmtDesc.Index));
        Off<V4l2FmtDesc>("v4l2_fmtdesc.type", nameof(V4l2FmtDesc.Type));
        Off<V4l2FmtDesc>("v4l2_fmtdesc.flags", nameof(V4l2FmtDesc.Flags));
        Off<V4l2FmtDesc>("v4l2_fmtdesc.description", nameof(V4l2FmtDesc.Description0));
        Off<V4l2FmtDesc>("v4l2_fmtdesc.pixelformat", nameof(V4l2FmtDesc.PixelFormat));
        t.Add(("sizeof.v4l2_fmtdesc.description", V4l2FmtDesc.DescriptionLength));

        Size<V4l2RequestBuffers>("v4l2_requestbuffers");
        Off<V4l2RequestBuffers>("v4l2_requestbuffers.count", nameof(V4l2RequestBuffers.Count));
        Off<V4l2RequestBuffers>("v4l2_requestbuffers.type", nameof(V4l2RequestBuffers.Type));
        Off<V4l2RequestBuffers>("v4l2_requestbuffers.memory", nameof(V4l2RequestBuffers.Memory));
        Off<V4l2RequestBuffers>("v4l2_requestbuffers.capabilities", nameof(V4l2RequestBuffers.Capabilities));
        Off<V4l2RequestBuffers>("v4l2_requestbuffers.flags", nameof(V4l2RequestBuffers.Flags));

        Size<TimeVal>("timeval");
        Off<TimeVal>("timeval.tv_sec", nameof(TimeVal.Seconds));
        Off<TimeVal>("timeval.tv_usec", nameof(TimeVal.Microseconds));

        Size<V4l2Timecode>("v4l2_timecode");
        Off<V4l2Timecode>("v4l2_timecode.type", nameof(V4l2Timecode.Type));
        Off<V4l2Timecode>("v4l2_timecode.flags", nameof(V4l2Timecode.Flags));
        Off<V4l2Timecode>("v4l2_timecode.frames", nameof(V4l2Timecode.Frames));
        Off<V4l2Timecode>("v4l2_timecode.seconds", nameof(V4l2Timecode.Seconds));
        Off<V4l2Timecode>("v4l2_timecode.minutes", nameof(V4l2Timecode.Minutes));
        Off<V4l2Timecode>("v4l2_timecode.hours", nameof(V4l2Timecode.Hours));
        Off<V4l2Timecode>("v4l2_timecode.userbits", nameof(V4l2Timecode.UserBits0));

        Size<V4l2Buffer>("v4l2_buffer");
        Off<V4l2Buffer>("v4l2_buffer.index", nameof(V4l2Buffer.Index));
        Off<V4l2Buffer>("v4l2_buffer.type", nameof(V4l2Buffer.Type));
        Off<V4l2Buffer>("v4l2_buffer.bytesused", nameof(V4l2Buffer.BytesUsed));
        Off<V4l2Buffer>("v4l2_buffer.flags", nameof(V4l2Buffer.Flags));
        Off<V4l2Buffer>("v4l2_buffer.field", nameof(V4l2Buffer.Field));
        Off<V4l2Buffer>("v4l2_buffer.timestamp", nameof(V4l2Buffer.Timestamp));
        Off<V4l2Buffer>("v4l2_buffer.timecode", nameof(V4l2Buffer.Timecode));
        Off<V4l2Buffer>("v4l2_buffer.sequence", nameof(V4l2Buffer.Sequence));
        Off<V4l2Buffer>("v4l2_buffer.memory", nameof(V4l2Buffer.Memory));
        Off<V4l2Buffer>("v4l2_buffer.m", nameof(V4l2Buffer.M));
        long m = Marshal.OffsetOf<V4l2Buffer>(nameof(V4l2Buffer.M));
        Off<V4l2BufferM>("v4l2_buffer.m.offset", nameof(V4l2BufferM.Offset), m);
        Off<V4l2BufferM>("v4l2_buffer.m.userptr", nameof(V4l2BufferM.UserPtr), m);
        Off<V4l2BufferM>("v4l2_buffer.m.fd", nameof(V4l2BufferM.Fd), m);
        t.Add(("sizeof.v4l2_buffer.m", Marshal.SizeOf<V4l2BufferM>()));
        Off<V4l2Buffer>("v4l2_buffer.length", nameof(V4l2Buffer.Length));
        Off<V4l2Buffer>("v4l2_buffer.reserved2", nameof(V4l2Buffer.Reserved2));
        Off<V4l2Buffer>("v4l2_buffer.request_fd", nameof(V4l2Buffer.RequestFd));

        Size<PollFd>("pollfd");
        Off<PollFd>("pollfd.fd", nameof(PollFd.Fd));
        Off<PollFd>("pollfd.events", nameof(PollFd.Events));
        Off<PollFd>("pollfd.revents", nameof(PollFd.REvents));

        t.Add(("VIDIOC_QUERYCAP", VIDIOC_QUERYCAP));
        t.Add(("VIDIOC_ENUM_FMT", VIDIOC_ENUM_FMT));
        t.Add(("VIDIOC_S_FMT", VIDIOC_S_FMT));
        t.Add(("VIDIOC_REQBUFS", VIDIOC_REQBUFS));
        t.Add(("VIDIOC_QUERYBUF", VIDIOC_QUERYBUF));
        t.Add(("VIDIOC_QBUF", VIDIOC_QBUF));
        t.Add(("VIDIOC_DQBUF", VIDIOC_DQBUF));
        t.Add(("VIDIOC_STREAMON", VIDIOC_STREAMON));
        t.Add(("VIDIOC_STREAMOFF", VIDIOC_STREAMOFF));

        t.Add(("V4L2_PIX_FMT_RGB24", V4L2_PIX_FMT_RGB24));
        t.Add(("V4L2_PIX_FMT_BGR24", V4L2_PIX_FMT_BGR24));
        t.Add(("V4L2_PIX_FMT_RGB565", V4L2_PIX_FMT_RGB565));
        t.Add(("V4L2_PIX_FMT_YUYV", V4L2_PIX_FMT_YUYV));
        t.Add(("V4L2_PIX_FMT_GREY", V4L2_PIX_FMT_GREY));
        t.Add(("V4L2_CAP_VIDEO_CAPTURE", V4L2_CAP_VIDEO_CAPTURE));
        t.Add(("V4L2_CAP_VIDEO_CAPTURE_MPLANE", V4L2_CAP_VIDEO_CAPTURE_MPLANE));
        t.Add(("V4L2_CAP_STREAMING", V4L2_CAP_STREAMING));
        t.Add(("V4L2_CAP_DEVICE_CAPS", V4L2_CAP_DEVICE_CAPS));
        t.Add(("V4L2_BUF_TYPE_VIDEO_CAPTURE", V4L2_BUF_TYPE_VIDEO_CAPTURE));
        t.Add(("V4L2_MEMORY_MMAP", V4L2_MEMORY_MMAP));
        t.Add(("V4L2_FIELD_NONE", V4L2_FIELD_NONE));
        t.Add(("V4L2_BUF_FLAG_ERROR", V4L2_BUF_FLAG_ERROR));

        t.Add(("O_RDWR", O_RDWR));
        t.Add(("O_NONBLOCK", O_NONBLOCK));
        t.Add(("O_CLOEXEC", O_CLOEXEC));
        t.Add(("PROT_READ", PROT_READ));
        t.Add(("PROT_WRITE", PROT_WRITE));
        t.Add(("MAP_SHARED", MAP_SHARED));
        t.Add(("POLLIN", POLLIN));
        t.Add(("POLLERR", POLLERR));
        t.Add(("POLLHUP", POLLHUP));
        t.Add(("ENOENT", ENOENT));
        t.Add(("EINTR", EINTR));
        t.Add(("ENXIO", ENXIO));
        t.Add(("EAGAIN", EAGAIN));
        t.Add(("EACCES", EACCES));
        t.Add(("EBUSY", EBUSY));
        t.Add(("ENODEV", ENODEV));
        t.Add(("EINVAL", EINVAL));
        t.Add(("ENOTTY", ENOTTY));
        return t;
    }
}
