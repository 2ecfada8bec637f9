using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Common;

/// <summary>The pieces of device strings the board app and the tools share: pixel formats, frame sizes, SPI BUS,CS, numbers.</summary>
public static class DeviceStrings
{
    public static PixelFormat ParseFormat(string s) =>
        Enum.TryParse<PixelFormat>(s.Trim(), ignoreCase: true, out var f) && Enum.IsDefined(f) ? f
            : throw new DeviceStringException($"unsupported pixel format '{s}'; use one of {string.Join(", ", Enum.GetNames<PixelFormat>())}");

    public static (int Width, int Height) ParseSize(string s)
    {
        var p = s.Trim().ToLowerInvariant().Split('x');
        if (p.Length == 2 && int.TryParse(p[0], out int w) && int.TryParse(p[1], out int h) && w > 0 && h > 0) return (w, h);
        throw new DeviceStringException($"'{s}' is not a frame size WIDTHxHEIGHT (e.g. 640x480)");
    }

    /// <summary>"BUS,CS" of /dev/spidevBUS.CS.</summary>
    public static (int Bus, int ChipSelect) ParseSpi(string s)
    {
        var p = s.Split(',');
        if (p.Length != 2) throw new DeviceStringException($"'{s}' is not SPI BUS,CS (e.g. 0,0 for /dev/spidev0.0)");
        return ((int)ParseNumber(p[0], "SPI bus"), (int)ParseNumber(p[1], "chip select"));
    }

    /// <summary>A non-negative decimal or 0x-hexadecimal number.</summary>
    public static long ParseNumber(string s, string what)
    {
        s = s.Trim();
        bool hex = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (long.TryParse(hex ? s[2..] : s, hex ? System.Globalization.NumberStyles.HexNumber : System.Globalization.NumberStyles.None, null, out long v)) return v;
        throw new DeviceStringException($"{what} '{s}' is not a number (decimal, or hexadecimal with 0x)");
    }
}

/// <summary>A device string that does not parse: a command-line or config mistake.</summary>
public sealed class DeviceStringException(string message) : FormatException(message);
