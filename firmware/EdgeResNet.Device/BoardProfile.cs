using System.Device.Spi;
using EdgeResNet.Common;
using Iot.Device.Board;

namespace EdgeResNet.Device;

/// <summary>
/// A board by name (<c>--board rpi4</c>): its SPI and I2C bus ids and which header GPIOs those buses use,
/// from Iot.Device.Board's <see cref="RaspberryPiBoard"/> (its tables need no hardware). It fills what a
/// device string leaves out (<c>spi:</c>, <c>slots:spi:</c>, <c>arducam:</c>) and refuses an LED or button on a bus pin.
/// Pin numbers stay the GPIO controller's (BCM on a Raspberry Pi).
/// </summary>
public sealed class BoardProfile
{
    /// <summary>The 40-pin BCM283x / BCM2711 boards RaspberryPiBoard describes.</summary>
    public static readonly string[] Names = ["rpi3", "rpi4", "rpi-zero-2w"];

    public string Name { get; }
    /// <summary>The README's wiring: the ArduCam on SPI bus <see cref="SpiBus"/> chip select 0 (its sensor on I2C bus <see cref="I2cBus"/>), the flash chip on chip select 1.</summary>
    public int SpiBus { get; } = 0;
    public int FlashChipSelect { get; } = 1;
    public int CameraChipSelect { get; } = 0;
    public int I2cBus { get; }
    public int PinCount { get; }
    /// <summary>GPIO -> what it carries: SPI MISO/MOSI/SCLK, both chip selects, I2C SDA/SCL.</summary>
    public IReadOnlyDictionary<int, string> BusPins { get; }

    BoardProfile(string name, int i2cBus, int pinCount, IReadOnlyDictionary<int, string> busPins)
    {
        Name = name; I2cBus = i2cBus; PinCount = pinCount; BusPins = busPins;
    }

    public static BoardProfile Get(string name)
    {
        if (!Names.Contains(name)) throw new UsageException($"--board {name}: unknown board; known: {string.Join(", ", Names)} (or leave --board out and give every bus and pin)");
        using var pi = new RaspberryPiBoard();
        var pins = new Dictionary<int, string>();
        // GetDefaultPinAssignmentForSpi: MISO, MOSI, SCLK, then the chip select line.
        var camera = pi.GetDefaultPinAssignmentForSpi(new SpiConnectionSettings(0, 0));
        var flash = pi.GetDefaultPinAssignmentForSpi(new SpiConnectionSettings(0, 1));
        string[] spiNames = ["SPI0 MISO", "SPI0 MOSI", "SPI0 SCLK"];
        for (int i = 0; i < 3; i++) pins[flash[i]] = spiNames[i];
        pins[camera[3]] = "SPI0 CE0 (the ArduCam)";
        pins[flash[3]] = "SPI0 CE1 (the flash chip)";
        int i2c = pi.GetDefaultI2cBusNumber();
        var sdaScl = pi.GetDefaultPinAssignmentForI2c(i2c);
        pins[sdaScl[0]] = $"I2C{i2c} SDA (the camera sensor)";
        pins[sdaScl[1]] = $"I2C{i2c} SCL (the camera sensor)";
        return new BoardProfile(name, i2c, pi.PinCount, pins);
    }

    /// <summary>An image location with the board's flash bus filled in where it was left out.</summary>
    public string Image(string? spec) => spec switch
    {
        "spi" or "spi:" => $"spi:{SpiBus},{FlashChipSelect}",
        "slots:spi" or "slots:spi:" => $"slots:spi:{SpiBus},{FlashChipSelect}",
        _ => spec ?? "",
    };

    /// <summary>A camera with the board's buses filled in where it was left out.</summary>
    public string Camera(string? spec) => spec is "arducam" or "arducam:" ? $"arducam:{SpiBus},{CameraChipSelect},{I2cBus}" : spec ?? "";

    /// <summary>Refuses a status pin the board has no GPIO for, or one a bus in use carries.</summary>
    public void CheckPin(int pin, string what, bool flashOnSpi, bool arducam)
    {
        if (pin < 0) return;
        if (pin >= PinCount) throw new UsageException($"{what} GPIO {pin}: a {Name} has GPIO 0..{PinCount - 1}");
        if (BusPins.TryGetValue(pin, out var use) && (use.EndsWith("(the flash chip)") ? flashOnSpi : use.EndsWith("(the ArduCam)") || use.StartsWith("I2C") ? arducam : flashOnSpi || arducam))
            throw new UsageException($"{what} GPIO {pin} is {use} on a {Name}; choose a free GPIO");
    }
}
