using EdgeResNet.Runtime.Input;
using SkiaSharp;

namespace EdgeResNet.Common.Imaging;

/// <summary>Photo files as RGB24 frames: the one decoder of the device app and the tools.</summary>
public static class ImageFile
{
    /// <summary>
    /// Decodes a JPEG / PNG / BMP / GIF / WebP file with Skia (libjpeg-turbo for JPEG, the decoder
    /// Pillow uses too). No EXIF rotation and no colour management, as in the Keras reference.
    /// Greyscale files come out as three equal channels.
    /// </summary>
    public static Frame Decode(string path)
    {
        if (Directory.Exists(path)) throw new ImageDecodeException(path, "a directory, not an image file");
        if (!File.Exists(path)) throw new ImageDecodeException(path, "file not found");
        if (new FileInfo(path).Length == 0) throw new ImageDecodeException(path, "empty file");
        using var codec = SKCodec.Create(path, out var result);
        if (codec == null) throw new ImageDecodeException(path, $"not a JPEG, PNG, BMP, GIF or WebP image (Skia: {result})");
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
        return new Frame(info.Width, info.Height, PixelFormat.Rgb24, rgb);
    }

    /// <summary>The photo extensions a folder source replays.</summary>
    public static bool IsPhoto(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png" or ".bmp" or ".gif" or ".webp";
}

/// <summary>An image file that cannot be decoded; names the file and the reason.</summary>
public sealed class ImageDecodeException(string path, string reason) : Exception($"{path}: {reason}")
{
    public string Path { get; } = path;
}
