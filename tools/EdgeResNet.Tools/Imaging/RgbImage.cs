using EdgeResNet.Common.Imaging;
using SkiaSharp;

namespace EdgeResNet.Tools.Imaging;

/// <summary>An 8-bit RGB image, pixels interleaved R,G,B row by row.</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0 || pixels.Length != width * height * 3)
            throw new ArgumentException($"an RGB image of {width}x{height} needs {width * height * 3} bytes, got {pixels.Length}");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    /// <summary>Writes the image as PNG (temporary file, then rename).</summary>
    public void SavePng(string path)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[Width * Height * 4];
        for (int i = 0, j = 0; j < Pixels.Length; i += 4, j += 3)
        {
            rgba[i] = Pixels[j];
            rgba[i + 1] = Pixels[j + 1];
            rgba[i + 2] = Pixels[j + 2];
            rgba[i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, data.SaveTo);
    }

    /// <summary>Decodes a photo file (<see cref="ImageFile.Decode"/>: the device app's decoder too).</summary>
    public static RgbImage Load(string path)
    {
        var frame = ImageFile.Decode(path);
        return new RgbImage(frame.Width, frame.Height, frame.Data);
    }
}
