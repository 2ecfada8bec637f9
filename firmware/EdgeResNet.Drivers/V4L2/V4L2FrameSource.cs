using EdgeResNet.Common;
using System.Diagnostics;
using System.Runtime.InteropServices;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Drivers.V4L2;

/// <summary>
/// A V4L2 camera (<c>/dev/videoN</c>) on 64-bit Linux, through the kernel interface itself: VIDIOC_QUERYCAP, VIDIOC_S_FMT,
/// memory-mapped streaming buffers (VIDIOC_REQBUFS / QUERYBUF + mmap / QBUF / STREAMON), and per frame poll + VIDIOC_DQBUF,
/// a copy into one reused managed buffer, and VIDIOC_QBUF back. Accepted formats: RGB24, BGR24, RGB565 ('RGBP'), YUYV, GREY;
/// the driver may change the requested size or pick another accepted format, and the frames say what was chosen.
/// Not thread-safe: call <see cref="Capture"/> from one thread.
/// </summary>
public sealed unsafe class V4L2FrameSource : IFrameSource
{
    /// <summary>The device, e.g. "/dev/video0".</summary>
    public string DevicePath { get; }
    /// <summary>The size and format the driver chose.</summary>
    public int Width { get; }
    public int Height { get; }
    public PixelFormat Format { get; }
    /// <summary>Bytes per row as the driver reported it (bytesperline), the frames' stride.</summary>
    public int Stride { get; }
    /// <summary>The driver and card names from VIDIOC_QUERYCAP.</summary>
    public string Driver { get; } = "";
    public string Card { get; } = "";
    public string Description { get; }

    readonly int _timeoutMs;
    int _fd = -1;
    bool _streaming;
    readonly List<(nint Address, nuint Length)> _maps = new();
    readonly byte[] _data = [];
    readonly Frame? _frame;

    /// <param name="device">The V4L2 device node.</param>
    /// <param name="width">Requested width; the driver may choose another (see <see cref="Width"/>).</param>
    /// <param name="height">Requested height.</param>
    /// <param name="format">Requested pixel format.</param>
    /// <param name="bufferCount">How many memory-mapped buffers to ask for (the driver may grant more or fewer, at least 1 is needed).</param>
    /// <param name="timeoutMs">How long <see cref="Capture"/> waits for a frame before it throws.</param>
    public V4L2FrameSource(string device = "/dev/video0", int width = 640, int height = 480,
        PixelFormat format = PixelFormat.Yuyv, int bufferCount = 4, int timeoutMs = 2000)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"frame size {width}x{height} is not positive");
        if (bufferCount < 1 || bufferCount > 32) throw new ArgumentOutOfRangeException(nameof(bufferCount), "between 1 and 32 buffers");
        if (timeoutMs <= 0) throw new ArgumentOutOfRangeException(nameof(timeoutMs));
        DevicePath = device;
        _timeoutMs = timeoutMs;
        CheckPlatform();
        try
        {
            Open();
            (Driver, Card) = QueryCapabilities();
            (Width, Height, Format, Stride, int sizeImage) = SetFormat(width, height, format);
            MapBuffers(bufferCount);
            foreach (var i in Enumerable.Range(0, _maps.Count)) Queue((uint)i);
            int type = (int)V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
            Xioctl(V4L2Abi.VIDIOC_STREAMON, &type, "VIDIOC_STREAMON (start streaming)");
            _streaming = true;
            _data = new byte[Math.Max(Math.Max(sizeImage, Stride * Height), Frame.MinLength(Width, Height, Format, Stride))];
            _frame = new Frame(Width, Height, Format, _data, Stride);
            Description = $"{device} {Width}x{Height} {Format} ({Card.Trim()}, {Driver})";
        }
        catch
        {
            Release();
            throw;
        }
    }

    static void CheckPlatform()
    {
        if (!OperatingSystem.IsLinux())
            throw new DeviceException("V4L2 cameras need Linux; on this system use a folder of photos as the frame source");
        if (!Environment.Is64BitProcess)
            throw new DeviceException("the V4L2 camera source supports 64-bit processes only (its kernel structs are laid out for LP64); " +
                "run a 64-bit OS and .NET (arm64 or x86-64)");
        var arch = RuntimeInformation.ProcessArchitecture;
        if (arch is not (Architecture.X64 or Architecture.Arm64 or Architecture.RiscV64 or Architecture.LoongArch64))
            throw new DeviceException($"the V4L2 camera source supports x86-64 and arm64 Linux (the generic ioctl encoding), not {arch}");
    }

    void Open()
    {
        int fd;
        int errno;
        do
        {
            fd = Libc.Open(DevicePath, V4L2Abi.O_RDWR | V4L2Abi.O_NONBLOCK | V4L2Abi.O_CLOEXEC);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        } while (fd < 0 && errno == V4L2Abi.EINTR);
        if (fd >= 0) { _fd = fd; return; }
        string text = Libc.ErrorText(errno);
        throw errno switch
        {
            V4L2Abi.ENOENT or V4L2Abi.ENODEV or V4L2Abi.ENXIO => new DeviceException(
                $"no camera at {DevicePath} ({text}); list cameras with `v4l2-ctl --list-devices` (package v4l-utils), " +
                "check the cable / that the camera is enabled, and pass the right /dev/videoN"),
            V4L2Abi.EACCES => new DeviceException(
                $"no permission to open {DevicePath} ({text}); add the user to the 'video' group " +
                "(`sudo usermod -aG video $USER`, then log in again) or run as a user that is in it"),
            V4L2Abi.EBUSY => new DeviceException($"camera {DevicePath} is busy ({text}); another program is using it"),
            _ => new DeviceException($"cannot open camera {DevicePath}: {text} (errno {errno})"),
        };
    }

    /// <summary>ioctl with EINTR retried; throws a DeviceException naming the step on failure.</summary>
    void Xioctl(uint request, void* arg, string what)
    {
        int errno = TryIoctl(request, arg);
        if (errno != 0) throw Failure(what, errno);
    }

    /// <summary>ioctl with EINTR retried; returns 0 or the errno.</summary>
    int TryIoctl(uint request, void* arg)
    {
        while (true)
        {
            if (Libc.Ioctl(_fd, request, arg) != -1) return 0;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != V4L2Abi.EINTR) return errno;
        }
    }

    DeviceException Failure(string what, int errno)
    {
        string text = Libc.ErrorText(errno);
        return errno switch
        {
            V4L2Abi.EBUSY => new DeviceException($"{DevicePath}: {what} failed: the camera is busy ({text}); another program is streaming from it"),
            V4L2Abi.ENODEV or V4L2Abi.ENXIO => new DeviceException($"{DevicePath}: {what} failed: the camera went away ({text}); was it unplugged?"),
            _ => new DeviceException($"{DevicePath}: {what} failed: {text} (errno {errno})"),
        };
    }

    (string Driver, string Card) QueryCapabilities()
    {
        V4l2Capability cap = default;
        int errno = TryIoctl(V4L2Abi.VIDIOC_QUERYCAP, &cap);
        if (errno == V4L2Abi.ENOTTY || errno == V4L2Abi.EINVAL)
            throw new DeviceException($"{DevicePath} is not a V4L2 device (VIDIOC_QUERYCAP: {Libc.ErrorText(errno)}); " +
                "list cameras with `v4l2-ctl --list-devices`");
        if (errno != 0) throw Failure("VIDIOC_QUERYCAP", errno);
        string driver = CString(MemoryMarshal.CreateReadOnlySpan(ref cap.Driver0, V4l2Capability.DriverLength));
        string card = CString(MemoryMarshal.CreateReadOnlySpan(ref cap.Card0, V4l2Capability.CardLength));
        uint caps = (cap.Capabilities & V4L2Abi.V4L2_CAP_DEVICE_CAPS) != 0 ? cap.DeviceCaps : cap.Capabilities;
        if ((caps & V4L2Abi.V4L2_CAP_VIDEO_CAPTURE) == 0)
        {
            string why = (caps & V4L2Abi.V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0
                ? "it offers only multi-planar capture, which this source does not support"
                : "it is not a video capture node (often a camera has several /dev/video nodes: metadata, codec, ISP)";
            throw new DeviceException($"{DevicePath} ({card}, driver {driver}): {why}; list nodes with `v4l2-ctl --list-devices` " +
                "and pick the capture node");
        }
        if ((caps & V4L2Abi.V4L2_CAP_STREAMING) == 0)
            throw new DeviceException($"{DevicePath} ({card}, driver {driver}) does not support streaming I/O (V4L2_CAP_STREAMING), " +
                "which this source needs (read() I/O is not supported)");
        return (driver, card);
    }

    (int Width, int Height, PixelFormat Format, int Stride, int SizeImage) SetFormat(int width, int height, PixelFormat format)
    {
        V4l2Format f = default;
        f.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
        f.Pix.Width = (uint)width;
        f.Pix.Height = (uint)height;
        f.Pix.PixelFormat = ToFourCC(format);
        f.Pix.Field = V4L2Abi.V4L2_FIELD_NONE;
        Xioctl(V4L2Abi.VIDIOC_S_FMT, &f, $"VIDIOC_S_FMT ({width}x{height} {V4L2Abi.FourCCName(f.Pix.PixelFormat)})");

        PixelFormat? chosen = FromFourCC(f.Pix.PixelFormat);
        if (chosen is null)
            throw new DeviceException($"{DevicePath}: asked for {V4L2Abi.FourCCName(ToFourCC(format))}, the camera chose " +
                $"{V4L2Abi.FourCCName(f.Pix.PixelFormat)}, which this source does not accept (accepted: RGB3, BGR3, RGBP, YUYV, GREY); " +
                $"the camera offers: {string.Join(", ", OfferedFormats())}");
        int w = (int)f.Pix.Width, h = (int)f.Pix.Height;
        if (w <= 0 || h <= 0 || w > 1 << 15 || h > 1 << 15)
            throw new DeviceException($"{DevicePath}: the driver reported a frame size of {f.Pix.Width}x{f.Pix.Height}; ask for another size, or check the modes with `v4l2-ctl -d {DevicePath} --list-formats-ext`");
        if (chosen == PixelFormat.Yuyv && w % 2 != 0)
            throw new DeviceException($"{DevicePath}: the driver chose an odd YUYV width {w}; ask for an even width or another format");
        int min = Frame.MinStride(w, chosen.Value);
        int stride = f.Pix.BytesPerLine == 0 ? min : (int)f.Pix.BytesPerLine;
        if (stride < min)
            throw new DeviceException($"{DevicePath}: the driver reported {stride} bytes per line for a {w}-pixel {chosen} row ({min} bytes), a driver bug; try another size or format");
        return (w, h, chosen.Value, stride, (int)Math.Min(f.Pix.SizeImage, int.MaxValue));
    }

    /// <summary>The formats VIDIOC_ENUM_FMT lists, as "YUYV (YUYV 4:2:2)".</summary>
    List<string> OfferedFormats()
    {
        var list = new List<string>();
        for (uint i = 0; i < 64; i++)
        {
            V4l2FmtDesc d = default;
            d.Index = i;
            d.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
            if (TryIoctl(V4L2Abi.VIDIOC_ENUM_FMT, &d) != 0) break;
            list.Add($"{V4L2Abi.FourCCName(d.PixelFormat)} ({CString(MemoryMarshal.CreateReadOnlySpan(ref d.Description0, V4l2FmtDesc.DescriptionLength))})");
        }
        if (list.Count == 0) list.Add("(VIDIOC_ENUM_FMT listed nothing)");
        return list;
    }

    void MapBuffers(int count)
    {
        V4l2RequestBuffers req = default;
        req.Count = (uint)count;
        req.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.Memory = V4L2Abi.V4L2_MEMORY_MMAP;
        int errno = TryIoctl(V4L2Abi.VIDIOC_REQBUFS, &req);
        if (errno == V4L2Abi.EINVAL)
            throw new DeviceException($"{DevicePath} does not support memory-mapped streaming buffers (VIDIOC_REQBUFS MMAP: {Libc.ErrorText(errno)})");
        if (errno != 0) throw Failure($"VIDIOC_REQBUFS ({count} MMAP buffers)", errno);
        if (req.Count < 1) throw new DeviceException($"{DevicePath}: the driver granted no capture buffers (out of memory?); close other camera programs or ask for a smaller frame");

        for (uint i = 0; i < req.Count; i++)
        {
            V4l2Buffer b = default;
            b.Index = i;
            b.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
            b.Memory = V4L2Abi.V4L2_MEMORY_MMAP;
            Xioctl(V4L2Abi.VIDIOC_QUERYBUF, &b, $"VIDIOC_QUERYBUF (buffer {i})");
            nint address = Libc.Mmap(0, b.Length, V4L2Abi.PROT_READ | V4L2Abi.PROT_WRITE, V4L2Abi.MAP_SHARED, _fd, b.M.Offset);
            if (address == Libc.MapFailed)
            {
                int e = Marshal.GetLastPInvokeError();
                throw new DeviceException($"{DevicePath}: mmap of capture buffer {i} ({b.Length} bytes) failed: {Libc.ErrorText(e)} (errno {e})");
            }
            _maps.Add((address, b.Length));
        }
    }

    void Queue(uint index)
    {
        V4l2Buffer b = default;
        b.Index = index;
        b.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b.Memory = V4L2Abi.V4L2_MEMORY_MMAP;
        Xioctl(V4L2Abi.VIDIOC_QBUF, &b, $"VIDIOC_QBUF (buffer {index})");
    }

    /// <summary>Waits up to the timeout for the next frame and returns it; the returned frame's buffer is reused by the next call.
    /// Frames the driver marks as erroneous or delivers short are dropped and the wait continues.</summary>
    public Frame? Capture()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        long deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * _timeoutMs / 1000;
        long minBytes = _frame!.Length;
        int dropped = 0;
        while (true)
        {
            int left = (int)Math.Max(0, (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency);
            PollFd p = new() { Fd = _fd, Events = V4L2Abi.POLLIN };
            int r = Libc.Poll(&p, 1, left);
            if (r < 0)
            {
                int e = Marshal.GetLastPInvokeError();
                if (e == V4L2Abi.EINTR) continue;
                throw Failure("poll", e);
            }
            if (r == 0)
                throw new DeviceException($"{DevicePath}: no frame within {_timeoutMs} ms" +
                    (dropped > 0 ? $" ({dropped} erroneous or short frames dropped)" : "") +
                    "; is the camera connected and streaming (lens cap, cable, another program)?");
            if ((p.REvents & V4L2Abi.POLLIN) == 0 && (p.REvents & (V4L2Abi.POLLERR | V4L2Abi.POLLHUP)) != 0)
                throw new DeviceException($"{DevicePath}: the camera reported an error while streaming (poll revents 0x{p.REvents:x}); was it unplugged?");

            V4l2Buffer b = default;
            b.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
            b.Memory = V4L2Abi.V4L2_MEMORY_MMAP;
            int errno = TryIoctl(V4L2Abi.VIDIOC_DQBUF, &b);
            if (errno == V4L2Abi.EAGAIN) continue;   // woken without a ready buffer
            if (errno != 0) throw Failure("VIDIOC_DQBUF", errno);
            if (b.Index >= _maps.Count)
                throw new DeviceException($"{DevicePath}: VIDIOC_DQBUF returned buffer {b.Index}, but only {_maps.Count} are mapped");
            // Buffers filled while the app was busy or waiting for a button hold old scenes: keep only
            // the newest (non-blocking DQBUF until EAGAIN), handing the older ones straight back.
            while (true)
            {
                V4l2Buffer newer = default;
                newer.Type = V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
                newer.Memory = V4L2Abi.V4L2_MEMORY_MMAP;
                if (TryIoctl(V4L2Abi.VIDIOC_DQBUF, &newer) != 0 || newer.Index >= _maps.Count) break;
                Queue(b.Index);
                b = newer;
            }

            var (address, length) = _maps[(int)b.Index];
            int used = (int)Math.Min(Math.Min(b.BytesUsed, (uint)length), (uint)_data.Length);
            bool good = (b.Flags & V4L2Abi.V4L2_BUF_FLAG_ERROR) == 0 && used >= minBytes;
            if (good) new ReadOnlySpan<byte>((void*)address, used).CopyTo(_data);
            Queue(b.Index);
            if (good) return _frame;
            dropped++;
        }
    }

    static uint ToFourCC(PixelFormat f) => f switch
    {
        PixelFormat.Rgb24 => V4L2Abi.V4L2_PIX_FMT_RGB24,
        PixelFormat.Bgr24 => V4L2Abi.V4L2_PIX_FMT_BGR24,
        PixelFormat.Rgb565 => V4L2Abi.V4L2_PIX_FMT_RGB565,
        PixelFormat.Yuyv => V4L2Abi.V4L2_PIX_FMT_YUYV,
        PixelFormat.Grey8 => V4L2Abi.V4L2_PIX_FMT_GREY,
        _ => throw new ArgumentException("unknown pixel format " + f),
    };

    static PixelFormat? FromFourCC(uint code) =>
        code == V4L2Abi.V4L2_PIX_FMT_RGB24 ? PixelFormat.Rgb24 :
        code == V4L2Abi.V4L2_PIX_FMT_BGR24 ? PixelFormat.Bgr24 :
        code == V4L2Abi.V4L2_PIX_FMT_RGB565 ? PixelFormat.Rgb565 :
        code == V4L2Abi.V4L2_PIX_FMT_YUYV ? PixelFormat.Yuyv :
        code == V4L2Abi.V4L2_PIX_FMT_GREY ? PixelFormat.Grey8 : null;

    static string CString(ReadOnlySpan<byte> bytes)
    {
        int n = bytes.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(n < 0 ? bytes : bytes[..n]);
    }

    void Release()
    {
        if (_fd >= 0 && _streaming)
        {
            int type = (int)V4L2Abi.V4L2_BUF_TYPE_VIDEO_CAPTURE;
            TryIoctl(V4L2Abi.VIDIOC_STREAMOFF, &type);
            _streaming = false;
        }
        foreach (var (address, length) in _maps) Libc.Munmap(address, length);
        _maps.Clear();
        if (_fd >= 0)
        {
            Libc.Close(_fd);   // not retried on EINTR: on Linux the descriptor is released either way
            _fd = -1;
        }
    }

    /// <summary>STREAMOFF, unmaps the buffers and closes the device. Safe to call twice.</summary>
    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~V4L2FrameSource() => Release();
}
