namespace EdgeResNet.Flashing.SpiNor;

/// <summary>
/// Names for the JEDEC IDs (manufacturer, memory type, capacity code) of chips this driver targets.
/// Only for <see cref="SpiNorFlash.Describe"/> and as the size of last resort when a chip has no
/// SFDP table; the size normally comes from SFDP.
/// </summary>
public static class SpiNorParts
{
    static readonly Dictionary<uint, (string Name, long Capacity)> Known = new()
    {
        [0xEF4018] = ("Winbond W25Q128JV", 16L << 20),
        [0xEF4019] = ("Winbond W25Q256JV", 32L << 20),
        [0xEF7019] = ("Winbond W25Q256JV-M", 32L << 20),
        [0xEF4020] = ("Winbond W25Q512JV", 64L << 20),
        [0xEF7020] = ("Winbond W25Q512JV-M", 64L << 20),
        [0xC22018] = ("Macronix MX25L12835F", 16L << 20),
        [0xC22019] = ("Macronix MX25L25645G", 32L << 20),
        [0xC2201A] = ("Macronix MX25L51245G", 64L << 20),
        [0x20BA19] = ("Micron MT25QL256", 32L << 20),
        [0x20BA20] = ("Micron MT25QL512", 64L << 20),
        [0x9D6019] = ("ISSI IS25LP256", 32L << 20),
    };

    static readonly Dictionary<byte, string> Manufacturers = new()
    {
        [0xEF] = "Winbond", [0xC2] = "Macronix", [0x20] = "Micron", [0x9D] = "ISSI",
        [0xC8] = "GigaDevice", [0x01] = "Infineon", [0x1F] = "Adesto",
    };

    /// <summary>The part for a 24-bit JEDEC ID, if it is one we know.</summary>
    public static bool TryGet(uint jedecId, out string name, out long capacity)
    {
        bool known = Known.TryGetValue(jedecId, out var part);
        (name, capacity) = part;
        return known;
    }

    /// <summary>"Winbond W25Q512JV", or for an unknown part "Winbond, JEDEC ID EF4099".</summary>
    public static string Name(uint jedecId)
    {
        if (TryGet(jedecId, out string name, out _)) return name;
        string maker = Manufacturers.TryGetValue((byte)(jedecId >> 16), out var m) ? m : "unknown manufacturer";
        return $"{maker}, JEDEC ID {jedecId:X6}";
    }
}
