using System;

namespace EdgeResNet.Runtime.Input
{
    /// <summary>Sensor pixel layouts a frame can arrive in (byte order as V4L2 defines them).</summary>
    public enum PixelFormat
    {
        /// <summary>R, G, B bytes per pixel.</summary>
        Rgb24,
        /// <summary>B, G, R bytes per pixel.</summary>
        Bgr24,
        /// <summary>16-bit little-endian per pixel, red in bits 15-11, green 10-5, blue 4-0 (V4L2 RGBP).</summary>
        Rgb565,
        /// <summary>YUV 4:2:2, Y0 U Y1 V per two pixels, BT.601 limited range (V4L2 YUYV).</summary>
        Yuyv,
        /// <summary>One luma byte per pixel.</summary>
        Grey8,
    }

    /// <summary>One raw camera frame: the sensor's bytes with their layout. Sources may reuse <see cref="Data"/> between frames.</summary>
    public sealed class Frame
    {
        public int Width { get; }
        public int Height { get; }
        public PixelFormat Format { get; }
        /// <summary>Bytes from the start of one row to the next (at least <see cref="MinStride"/>).</summary>
        public int Stride { get; }
        public byte[] Data { get; }

        public Frame(int width, int height, PixelFormat format, byte[] data, int stride = 0)
        {
            if (width <= 0 || height <= 0) throw new ArgumentException($"frame size {width}x{height} is not positive");
            if (format == PixelFormat.Yuyv && width % 2 != 0) throw new ArgumentException($"a YUYV frame needs an even width, not {width}");
            int min = MinStride(width, format);
            if (stride == 0) stride = min;
            if (stride < min) throw new ArgumentException($"stride {stride} is shorter than a {width}-pixel {format} row ({min} bytes)");
            long needed = MinLength(width, height, format, stride);
            if (data == null || data.Length < needed)
                throw new ArgumentException($"a {width}x{height} {format} frame needs {needed} bytes, got {(data == null ? 0 : data.Length)}");
            Width = width; Height = height; Format = format; Data = data; Stride = stride;
        }

        public static int BytesPerPixel(PixelFormat format)
        {
            switch (format)
            {
                case PixelFormat.Rgb24: case PixelFormat.Bgr24: return 3;
                case PixelFormat.Rgb565: case PixelFormat.Yuyv: return 2;
                case PixelFormat.Grey8: return 1;
                default: throw new ArgumentException("unknown pixel format " + format);
            }
        }

        public static int MinStride(int width, PixelFormat format) => width * BytesPerPixel(format);

        /// <summary>Bytes a frame's data must hold: every row but the last at the stride, the last only its pixels.</summary>
        public static long MinLength(int width, int height, PixelFormat format, int stride) => (long)stride * (height - 1) + MinStride(width, format);

        /// <summary>The bytes a frame from the sensor must deliver.</summary>
        public long Length => MinLength(Width, Height, Format, Stride);
    }
}
