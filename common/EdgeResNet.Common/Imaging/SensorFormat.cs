using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Common.Imaging;

/// <summary>
/// RGB24 to the formats sensors deliver, as a sensor computes them: what the folder source and
/// the camera emulations serve. (The way back, sensor format to RGB, is the runtime's
/// <see cref="FramePreprocessor.ConvertRow"/>.)
/// </summary>
public static class SensorFormat
{
    public static Frame FromRgb24(Frame rgb, PixelFormat format)
    {
        if (rgb.Format != PixelFormat.Rgb24) throw new ArgumentException($"expected an RGB24 frame, got {rgb.Format}");
        if (format == PixelFormat.Rgb24) return rgb;
        int w = rgb.Width, h = rgb.Height;
        if (format == PixelFormat.Yuyv && w % 2 != 0) w--; // YUYV codes pixels in pairs: drop the odd last column
        var data = new byte[Frame.MinStride(w, format) * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int s = y * rgb.Stride + x * 3;
                byte r = rgb.Data[s], g = rgb.Data[s + 1], b = rgb.Data[s + 2];
                switch (format)
                {
                    case PixelFormat.Bgr24:
                        data[(y * w + x) * 3] = b; data[(y * w + x) * 3 + 1] = g; data[(y * w + x) * 3 + 2] = r;
                        break;
                    case PixelFormat.Rgb565:
                        int v = Rgb565(r, g, b);
                        data[(y * w + x) * 2] = (byte)v; data[(y * w + x) * 2 + 1] = (byte)(v >> 8);
                        break;
                    case PixelFormat.Grey8:
                        data[y * w + x] = (byte)((77 * r + 150 * g + 29 * b + 128) >> 8);
                        break;
                    case PixelFormat.Yuyv:
                        if ((x & 1) == 1) break;
                        int r1 = rgb.Data[s + 3], g1 = rgb.Data[s + 4], b1 = rgb.Data[s + 5];
                        int o = (y * w + x) * 2;
                        data[o] = Luma(r, g, b);
                        data[o + 2] = Luma(r1, g1, b1);
                        (data[o + 1], data[o + 3]) = PairChroma(r, g, b, r1, g1, b1);
                        break;
                    default: throw new ArgumentException("unsupported pixel format " + format);
                }
            }
        return new Frame(w, h, format, data);
    }

    /// <summary>5-6-5 bits of an RGB colour (the top bits of each channel).</summary>
    public static int Rgb565(int r, int g, int b) => (r >> 3) << 11 | (g >> 2) << 5 | b >> 3;

    /// <summary>BT.601 limited-range luma (16..235) in 8-bit fixed point.</summary>
    public static byte Luma(int r, int g, int b) => (byte)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);

    /// <summary>4:2:2 subsampling: the mean of the two pixels' Cb and of their Cr, rounded up at .5.</summary>
    public static (byte U, byte V) PairChroma(int r0, int g0, int b0, int r1, int g1, int b1)
    {
        var (u0, v0) = Chroma(r0, g0, b0);
        var (u1, v1) = Chroma(r1, g1, b1);
        return ((byte)((u0 + u1 + 1) >> 1), (byte)((v0 + v1 + 1) >> 1));
    }

    /// <summary>BT.601 limited-range Cb, Cr (16..240) in 8-bit fixed point.</summary>
    public static (byte U, byte V) Chroma(int r, int g, int b) =>
        ((byte)(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128), (byte)(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128));
}
