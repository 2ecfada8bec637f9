using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Drivers.Frames;

/// <summary>
/// Replays the photos of a folder (sorted by name) as camera frames, optionally converted to a
/// sensor format (RGB565, YUYV, ...) so the device's conversion path runs as with a real camera.
/// </summary>
public sealed class ImageFolderSource : IFrameSource
{
    readonly string[] _files;
    readonly PixelFormat _format;
    readonly bool _loop;
    int _next;

    public ImageFolderSource(string folder, PixelFormat format = PixelFormat.Rgb24, bool loop = false)
    {
        if (!Directory.Exists(folder)) throw new DeviceException($"image folder not found: {folder}");
        _files = Directory.EnumerateFiles(folder).Where(ImageFile.IsPhoto).Order(StringComparer.Ordinal).ToArray();
        if (_files.Length == 0) throw new DeviceException($"no photos (.jpg .jpeg .png .bmp .gif .webp) in {folder}");
        _format = format;
        _loop = loop;
        Description = $"folder {folder} ({_files.Length} photos as {format}{(loop ? ", looping" : "")})";
    }

    public string Description { get; }

    /// <summary>The file the last frame came from.</summary>
    public string? FrameName { get; private set; }

    public Frame? Capture()
    {
        if (_next == _files.Length)
        {
            if (!_loop) return null;
            _next = 0;
        }
        FrameName = _files[_next++];
        var photo = ImageFile.Decode(FrameName);
        if (_format == PixelFormat.Yuyv && photo.Width < 2) throw new ImageDecodeException(FrameName, "1 pixel wide: too narrow for a YUYV frame (pixels come in pairs)");
        return SensorFormat.FromRgb24(photo, _format);
    }

    public void Dispose() { }
}
