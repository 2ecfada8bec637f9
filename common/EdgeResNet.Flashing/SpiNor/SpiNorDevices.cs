using EdgeResNet.Common;
using System.Device.Spi;
using EdgeResNet.Flashing.Emulation;

namespace EdgeResNet.Flashing.SpiNor;

/// <summary>A SPI NOR chip opened with the SPI device it talks through (disposed together).</summary>
public sealed class OpenedNor(SpiNorFlash flash, SpiDevice device, string description) : IDisposable
{
    public SpiNorFlash Flash { get; } = flash;
    public string Description { get; } = description;
    public void Dispose() => device.Dispose();
}

/// <summary>Opening the flash chip: on a board's SPI bus, or the emulated chip whose contents live in a file.</summary>
public static class SpiNorDevices
{
    public const int ClockHz = 20_000_000;

    /// <summary>The chip on /dev/spidevBUS.CS, identified by JEDEC ID and SFDP.</summary>
    public static OpenedNor OpenSpi(int bus, int chipSelect)
    {
        SpiDevice spi;
        try { spi = SpiDevice.Create(Settings(bus, chipSelect)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException or InvalidOperationException)
        {
            throw Missing(bus, chipSelect, e);
        }
        try
        {
            // Linux opens /dev/spidevB.C on the first transfer, so a missing device shows up here.
            return Open(spi, $"/dev/spidev{bus}.{chipSelect}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Missing(bus, chipSelect, e);
        }
    }

    /// <summary>The SPI settings every bus uses for the chip: mode 0 at <see cref="ClockHz"/> on chip select <paramref name="chipSelect"/>.</summary>
    public static SpiConnectionSettings Settings(int bus, int chipSelect) => new(bus, chipSelect) { ClockFrequency = ClockHz, Mode = SpiMode.Mode0 };

    /// <summary>The chip behind any SPI device (a board's bus, a USB adapter, the emulation), identified by JEDEC ID and SFDP; the device is disposed with it, or now if the chip does not answer.</summary>
    public static OpenedNor Open(SpiDevice spi, string where)
    {
        try
        {
            var nor = new SpiNorFlash(spi);
            return new OpenedNor(nor, spi, $"SPI NOR {nor.Describe()} on {where}");
        }
        catch { spi.Dispose(); throw; }
    }

    static DeviceException Missing(int bus, int chipSelect, Exception e) =>
        new($"cannot open SPI bus {bus} chip select {chipSelect} (/dev/spidev{bus}.{chipSelect}): {e.Message}. Enable SPI on the board (e.g. dtparam=spi=on) and check BUS,CS", e);

    /// <summary>
    /// An emulated W25Q512JV (<see cref="SpiNorChip"/>) whose contents persist in <paramref name="chipFile"/>.
    /// Only a command meant to fill a chip passes <paramref name="create"/> (a missing file is then made erased, and the
    /// description says so); elsewhere a missing file is an error, so a mistyped path makes no 64 MiB file.
    /// </summary>
    public static OpenedNor OpenEmulated(string chipFile, bool create = false)
    {
        if (string.IsNullOrEmpty(chipFile)) throw new ArgumentException("the emulated chip needs a file for its contents");
        bool created = !File.Exists(chipFile);
        if (created && !create)
            throw new FileNotFoundException($"emulated chip file not found: {chipFile}; put an image on it first with: edgeresnet flash --image IMG --spi-emulation {chipFile}", chipFile);
        var chip = new SpiNorChip(chipFile);
        var nor = new SpiNorFlash(chip);
        return new OpenedNor(nor, chip, $"emulated SPI NOR {nor.Describe()} in {chipFile}" + (created ? " (created, erased)" : ""));
    }
}
