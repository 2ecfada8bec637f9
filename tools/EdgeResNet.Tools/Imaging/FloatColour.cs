using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Tools.Imaging;

/// <summary>
/// Sensor formats to RGB with the textbook real-valued formulas, rounded once at the end: the
/// reference the device's fixed-point conversion (<see cref="FramePreprocessor.ConvertRow"/>) is measured against.
/// </summary>
public static class FloatColour
{
    public static RgbImage ToRgb(Frame f)
    {
        var rgb = new byte[f.Width * f.Height * 3];
        for (int y = 0; y < f.Height; y++)
            for (int x = 0; x < f.Width; x++)
            {
                int o = (y * f.Width + x) * 3, row = y * f.Stride;
                double r, g, b;
                switch (f.Format)
                {
                    case PixelFormat.Rgb24: r = f.Data[row + x * 3]; g = f.Data[row + x * 3 + 1]; b = f.Data[row + x * 3 + 2]; break;
                    case PixelFormat.Bgr24: b = f.Data[row + x * 3]; g = f.Data[row + x * 3 + 1]; r = f.Data[row + x * 3 + 2]; break;
                    case PixelFormat.Grey8: r = g = b = f.Data[row + x]; break;
                    case PixelFormat.Rgb565:
                    {
                        int v = f.Data[row + x * 2] | f.Data[row + x * 2 + 1] << 8;
                        r = (v >> 11) * 255.0 / 31; g = ((v >> 5) & 63) * 255.0 / 63; b = (v & 31) * 255.0 / 31;
                        break;
                    }
                    case PixelFormat.Yuyv:
                    {
                        int pair = row + (x >> 1) * 4;
                        double yy = 1.164 * (f.Data[pair + (x & 1) * 2] - 16), u = f.Data[pair + 1] - 128, v = f.Data[pair + 3] - 128;
                        r = yy + 1.596 * v; g = yy - 0.391 * u - 0.813 * v; b = yy + 2.018 * u;
                        break;
                    }
                    default: throw new ArgumentException("unsupported pixel format " + f.Format);
                }
                rgb[o] = Byte(r); rgb[o + 1] = Byte(g); rgb[o + 2] = Byte(b);
            }
        return new RgbImage(f.Width, f.Height, rgb);
    }

    static byte Byte(double v) => (byte)Math.Clamp(Math.Round(v), 0, 255);
}
