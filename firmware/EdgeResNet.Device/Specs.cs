using EdgeResNet.Common;
using static EdgeResNet.Common.DeviceStrings;
using EdgeResNet.Drivers.ArduCam;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Flashing.Storage;
using EdgeResNet.Drivers.V4L2;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Device;

/// <summary>An opened flash image: where it is read from, and what to dispose with it.</summary>
public sealed class OpenedImage(IFlash flash, string description, Func<long>? busBytesRead, IDisposable? owner, FlashImage? image = null) : IDisposable
{
    public IFlash Flash { get; } = flash;
    /// <summary>The image, when opening already opened it with every section checked (A/B slot boot).</summary>
    public FlashImage? Image { get; } = image;
    public string Description { get; } = description;
    /// <summary>Bytes clocked over the SPI bus so far (null when the image is a file).</summary>
    public Func<long>? BusBytesRead { get; } = busBytesRead;
    public void Dispose() => owner?.Dispose();
}

/// <summary>
/// The board app's device strings, parsed into opened drivers. Every mistake becomes a
/// DeviceException or a usage error naming the string and the accepted forms.
/// </summary>
public static class Specs
{
    public const string ImageForms = "PATH.img | file:PATH | spi:BUS,CS[@OFFSET] | emulated-nor:CHIPFILE[@OFFSET] | slots:STORAGE";
    public const string StorageForms = "spi:BUS,CS | emulated-nor:CHIPFILE | file:PATH";
    public const string CameraForms = "folder:DIR[,FORMAT][,loop] | v4l2:DEVICE[,WIDTHxHEIGHT[,FORMAT]] | arducam:SPIBUS,CS,I2CBUS[,WIDTHxHEIGHT[,FORMAT]]";

    /// <param name="trust">For slots: only an image signed by one of these keys boots (empty: any valid image).</param>
    public static OpenedImage OpenImage(string spec, IReadOnlyList<EdgeResNet.Common.Signing.TrustedKey>? trust = null)
    {
        var (kind, rest) = Split(spec);
        switch (kind)
        {
            case "slots":
            {
                // Every section is checked before choosing, so a damaged newest slot falls back to the other one.
                var storage = OpenStorage(rest);
                try
                {
                    var boot = new EdgeResNet.Flashing.Loader.SlotStore(storage.Flash, verifySections: true, trust).Boot();
                    return new OpenedImage(boot.Region, $"{storage.Description}, slot {boot.Slot} (generation {boot.Generation}" +
                        (boot.Signature is { } s ? $", signed by trusted key {s.KeyId}, security counter {s.SecurityCounter})" : ")"), storage.BusBytesRead, storage, boot.Image);
                }
                catch { storage.Dispose(); throw; }
            }
            case "spi":
            case "emulated-nor":
            {
                int atSign = rest.LastIndexOf('@');
                long offset = atSign < 0 ? 0 : ParseNumber(rest[(atSign + 1)..], "image offset");
                var storage = OpenStorage($"{kind}:{(atSign < 0 ? rest : rest[..atSign])}");
                if (offset < 0 || offset >= storage.Flash.Length)
                {
                    storage.Dispose();
                    throw new UsageException($"image offset {offset} is outside the {storage.Flash.Length:N0}-byte flash");
                }
                var nor = (SpiNorFlash)storage.Flash;
                return new OpenedImage(nor.Region(offset, nor.Capacity - offset), $"{storage.Description} at offset {offset}", storage.BusBytesRead, storage);
            }
            case "file":
            case "":
                return new OpenedImage(new FileFlash(rest), $"file {rest}", null, null);
            default:
                throw new UsageException($"unknown image location '{spec}'; use {ImageForms}");
        }
    }

    /// <summary>Writable flash: a SPI NOR chip, an emulated one whose contents live in a file, or a plain file.</summary>
    /// <param name="createEmulated">The loader fills a blank chip: an emulated one may be created; reading commands never create one.</param>
    public static OpenedStorage OpenStorage(string spec, bool createEmulated = false)
    {
        var (kind, rest) = Split(spec);
        switch (kind)
        {
            case "spi":
            {
                var (bus, cs) = ParseSpi(rest);
                var nor = SpiNorDevices.OpenSpi(bus, cs);
                return new OpenedStorage(nor.Flash, nor.Description, () => nor.Flash.BytesRead, nor);
            }
            case "emulated-nor":
            {
                if (rest.Length == 0) throw new UsageException("emulated-nor needs the file that holds the emulated chip's contents: emulated-nor:CHIPFILE");
                var nor = SpiNorDevices.OpenEmulated(rest, createEmulated);
                return new OpenedStorage(nor.Flash, nor.Description, () => nor.Flash.BytesRead, nor);
            }
            case "file":
            {
                var file = new FileStorage(rest);
                return new OpenedStorage(file, $"storage file {rest}", null, file);
            }
            default:
                throw new UsageException($"unknown storage '{spec}'; use {StorageForms}");
        }
    }

    public static IFrameSource OpenCamera(string spec)
    {
        var (kind, rest) = Split(spec);
        var parts = rest.Split(',', StringSplitOptions.TrimEntries);
        switch (kind)
        {
            case "folder":
            {
                // Options come off the end, so a folder name may itself contain commas.
                string dir = rest;
                bool loop = TakeLast(ref dir, t => t == "loop") != null;
                // A trailing word (a letter first, no '/') is the format; anything else belongs to the path.
                var format = TakeLast(ref dir, t => t.Length > 0 && char.IsLetter(t[0]) && !t.Contains('/')) is string f ? ParseFormat(f) : PixelFormat.Rgb24;
                return new ImageFolderSource(dir, format, loop);
            }
            case "v4l2":
            {
                var (w, h) = parts.Length > 1 ? ParseSize(parts[1]) : (640, 480);
                var format = parts.Length > 2 ? ParseFormat(parts[2]) : PixelFormat.Yuyv;
                return new V4L2FrameSource(parts[0].Length > 0 ? parts[0] : "/dev/video0", w, h, format);
            }
            case "arducam":
            {
                if (parts.Length < 3) throw new UsageException($"'{spec}': the ArduCam is arducam:SPIBUS,CS,I2CBUS[,WIDTHxHEIGHT[,FORMAT]]");
                var (w, h) = parts.Length > 3 ? ParseSize(parts[3]) : (320, 240);
                var format = parts.Length > 4 ? ParseFormat(parts[4]) : PixelFormat.Rgb565;
                return ArduCamFrameSource.Open((int)ParseNumber(parts[0], "SPI bus"), (int)ParseNumber(parts[1], "chip select"),
                    (int)ParseNumber(parts[2], "I2C bus"), new ArduCamOptions { Width = w, Height = h, Format = format });
            }
            default:
                throw new UsageException($"unknown camera '{spec}'; use {CameraForms}");
        }
    }

    /// <summary>Removes and returns a trailing ",TOKEN" of <paramref name="s"/> when <paramref name="match"/> accepts the token.</summary>
    static string? TakeLast(ref string s, Func<string, bool> match)
    {
        int comma = s.LastIndexOf(',');
        string token = comma < 0 ? "" : s[(comma + 1)..].Trim();
        if (comma < 0 || !match(token)) return null;
        s = s[..comma];
        return token;
    }

    static (string Kind, string Remainder) Split(string spec)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new UsageException($"an empty device string; give one of: image {ImageForms}; camera {CameraForms}");
        int colon = spec.IndexOf(':');
        // A plain path (no known prefix) is a file.
        if (colon <= 0 || spec[..colon].Contains('/') || spec[..colon].Contains('.')) return ("", spec);
        return (spec[..colon].ToLowerInvariant(), spec[(colon + 1)..]);
    }
}

/// <summary>Writable flash with a description and the bus byte counter.</summary>
public sealed class OpenedStorage(IWritableFlash flash, string description, Func<long>? busBytesRead, IDisposable? owner) : IDisposable
{
    public IWritableFlash Flash { get; } = flash;
    public string Description { get; } = description;
    public Func<long>? BusBytesRead { get; } = busBytesRead;
    public void Dispose() => owner?.Dispose();
}
