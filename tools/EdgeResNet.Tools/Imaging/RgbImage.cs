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

    /// <summary>
    /// Decodes a JPEG / PNG / BMP / GIF / WebP file with Skia (libjpeg-turbo for JPEG, the decoder
    /// Pillow uses too). No EXIF rotation and no colour management, as in the Keras reference.
    /// Greyscale files come out as three equal channels.
    /// </summary>
    public static RgbImage Load(string path)
    {
        if (!File.Exists(path)) throw new ImageDecodeException(path, "file not found");
        using var codec = SKCodec.Create(path, out var result);
        if (codec == null) throw new ImageDecodeException(path, $"not a readable image ({result})");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        unsafe
        {
            fixed (byte* p = rgba)
            {
                var r = codec.GetPixels(info, (IntPtr)p);
                if (r != SKCodecResult.Success)
                    throw new ImageDecodeException(path, r == SKCodecResult.IncompleteInput ? "the file is truncated" : $"decoding failed ({r})");
            }
        }
        var rgb = new byte[info.Width * info.Height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
        return new RgbImage(info.Width, info.Height, rgb);
    }
}

/// <summary>An image file that cannot be decoded; names the file and the reason.</summary>
public sealed class ImageDecodeException(string path, string reason) : Exception($"{path}: {reason}")
{
    public string Path { get; } = path;
}
