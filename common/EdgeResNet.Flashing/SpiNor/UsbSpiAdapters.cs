using System.Device.Spi;
using EdgeResNet.Common;

namespace EdgeResNet.Flashing.SpiNor;

/// <summary>
/// The USB-to-SPI adapters <c>edgeresnet flash --spi ft232h[:N]</c> and <c>ft4222[:N]</c> program a bare SPI NOR
/// chip through, from a PC: Iot.Device.Bindings' FT232H (MPSSE, FTDI's libftd2xx) and FT4222 (libft4222)
/// SPI devices, behind the same <see cref="SpiDevice"/> and driver (<see cref="SpiNorFlash"/>) as a board's bus.
/// </summary>
public static class UsbSpiAdapters
{
    /// <summary>Chip select: the FT232H's D3 (ADBUS3, its usual SPI CS wiring), the FT4222's SS0O.</summary>
    public static int ChipSelect(string kind) => kind == "ft232h" ? 3 : 0;

    public static bool IsAdapter(string spec) => spec.StartsWith("ft232h", StringComparison.OrdinalIgnoreCase) || spec.StartsWith("ft4222", StringComparison.OrdinalIgnoreCase);

    /// <summary>"ft232h" or "ft232h:1" (the second adapter of that kind) to the kind and index.</summary>
    public static (string Kind, int Index) Parse(string spec)
    {
        var parts = spec.ToLowerInvariant().Split(':');
        if (parts.Length > 2 || parts[0] is not ("ft232h" or "ft4222") || (parts.Length == 2 && (!int.TryParse(parts[1], out int n) || n < 0)))
            throw new UsageException($"--spi '{spec}': a USB adapter is ft232h, ft232h:N, ft4222 or ft4222:N (N counts adapters of that kind from 0)");
        return (parts[0], parts.Length == 2 ? int.Parse(parts[1]) : 0);
    }

    /// <summary>The chip behind adapter <paramref name="spec"/>.</summary>
    /// <param name="connect">Makes the SPI device of adapter (kind, index) with the given settings; the default finds the adapter on USB. Tests put the emulated chip here.</param>
    /// <exception cref="DeviceException">No adapter of that kind, its native library is missing, or the chip does not answer (exit 5).</exception>
    public static OpenedNor Open(string spec, Func<string, int, SpiConnectionSettings, SpiDevice>? connect = null)
    {
        var (kind, index) = Parse(spec);
        var settings = SpiNorDevices.Settings(0, ChipSelect(kind));
        SpiDevice spi = (connect ?? Connect)(kind, index, settings);
        return SpiNorDevices.Open(spi, $"{kind} adapter #{index} (chip select {settings.ChipSelectLine}, {settings.ClockFrequency / 1e6:0} MHz)");
    }

    static SpiDevice Connect(string kind, int index, SpiConnectionSettings settings)
    {
        string library = kind == "ft232h" ? "FTDI's D2XX library (libftd2xx.so)" : "FTDI's D2XX and LibFT4222 libraries (libftd2xx.so, libft4222.so)";
        List<Iot.Device.Board.Board> adapters;
        try
        {
            adapters = kind == "ft232h" ? [.. Iot.Device.Ft232H.Ft232HDevice.GetFt232H()] : [.. Iot.Device.Ft4222.Ft4222Device.GetFt4222()];
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or TypeInitializationException)
        {
            throw new DeviceException($"cannot look for {kind} adapters: {library} is not installed or cannot be loaded. Install it from FTDI (on the library path, e.g. /usr/local/lib) and plug in the adapter", e);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            throw new DeviceException($"cannot list {kind} adapters: {e.Message}. Check the USB connection and that your user may open it (udev rule)", e);
        }
        if (adapters.Count == 0) throw new DeviceException($"no {kind} adapter on USB: plug one in (wire the chip's CS to {(kind == "ft232h" ? "D3" : "SS0O")}), or flash over a board's bus with --spi BUS,CS");
        if (index >= adapters.Count) throw new DeviceException($"--spi {kind}:{index}: only {adapters.Count} {kind} adapter(s) found, numbered from 0");
        try { return adapters[index].CreateSpiDevice(settings); }
        catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException or DllNotFoundException)
        {
            throw new DeviceException($"cannot open SPI on {kind} adapter #{index}: {e.Message}", e);
        }
    }
}
