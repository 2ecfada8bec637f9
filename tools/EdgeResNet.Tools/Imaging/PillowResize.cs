namespace EdgeResNet.Tools.Imaging;

/// <summary>
/// A faithful port of Pillow's 8-bit separable resampling (libImaging/Resample.c) with the
/// BILINEAR filter: the filter's support widens by the scale when downscaling, coefficients are
/// normalised in double then rounded to 22-bit fixed point, the horizontal pass runs first, and
/// each pass rounds and clips to 8 bits. Bit-exact with Image.resize(size, Image.BILINEAR).
/// </summary>
public static class PillowResize
{
    const int PrecisionBits = 32 - 8 - 2;

    public static RgbImage Bilinear(RgbImage src, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), "target size must be positive");
        bool needHorizontal = width != src.Width, needVertical = height != src.Height;
        if (!needHorizontal && !needVertical) return new RgbImage(src.Width, src.Height, (byte[])src.Pixels.Clone());

        var (vBounds, vCoeffs, vSize) = Coefficients(src.Height, height);
        var img = src;
        if (needHorizontal)
        {
            // Only the source rows that the vertical pass reads are resampled, as in Pillow.
            int first = vBounds[0], last = vBounds[2 * height - 2] + vBounds[2 * height - 1];
            var (hBounds, hCoeffs, hSize) = Coefficients(src.Width, width);
            img = Horizontal(src, first, last - first, width, hBounds, hCoeffs, hSize);
            for (int i = 0; i < height; i++) vBounds[2 * i] -= first;
        }
        return needVertical ? Vertical(img, height, vBounds, vCoeffs, vSize) : img;
    }

    static double Filter(double x)
    {
        if (x < 0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    /// <summary>precompute_coeffs + normalize_coeffs_8bpc: per output pixel, first source index, tap count and fixed-point taps.</summary>
    static (int[] Bounds, int[] Coeffs, int KSize) Coefficients(int inSize, int outSize)
    {
        const double support0 = 1.0; // bilinear
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = support0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var coeffs = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale, ss = 1.0 / filterScale, ww = 0.0;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Filter((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < ksize; x++)
            {
                double v = x < xmax && ww != 0.0 ? k[x] / ww : x < xmax ? k[x] : 0.0;
                coeffs[xx * ksize + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return (bounds, coeffs, ksize);
    }

    static byte Clip8(int v) => v >= 1 << PrecisionBits << 8 ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);

    static RgbImage Horizontal(RgbImage src, int firstRow, int rows, int width, int[] bounds, int[] coeffs, int ksize)
    {
        var dst = new byte[width * rows * 3];
        for (int y = 0; y < rows; y++)
        {
            int srcRow = (y + firstRow) * src.Width * 3;
            for (int xx = 0; xx < width; xx++)
            {
                int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1], kOff = xx * ksize;
                for (int c = 0; c < 3; c++)
                {
                    int ss = 1 << (PrecisionBits - 1);
                    for (int x = 0; x < xmax; x++)
                        ss += src.Pixels[srcRow + (x + xmin) * 3 + c] * coeffs[kOff + x];
                    dst[(y * width + xx) * 3 + c] = Clip8(ss);
                }
            }
        }
        return new RgbImage(width, rows, dst);
    }

    static RgbImage Vertical(RgbImage src, int height, int[] bounds, int[] coeffs, int ksize)
    {
        int w = src.Width;
        var dst = new byte[w * height * 3];
        for (int yy = 0; yy < height; yy++)
        {
            int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], kOff = yy * ksize;
            for (int i = 0; i < w * 3; i++)
            {
                int ss = 1 << (PrecisionBits - 1);
                for (int y = 0; y < ymax; y++)
                    ss += src.Pixels[(y + ymin) * w * 3 + i] * coeffs[kOff + y];
                dst[yy * w * 3 + i] = Clip8(ss);
            }
        }
        return new RgbImage(w, height, dst);
    }
}
