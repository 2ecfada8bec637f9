namespace EdgeResNet.Common;

/// <summary>Linux spidev facts both SPI drivers (SPI NOR, ArduCam) and their emulations build around.</summary>
public static class Spidev
{
    /// <summary>The default buffer (module parameter bufsiz): a longer transfer fails with EMSGSIZE.</summary>
    public const int DefaultMaxTransferBytes = 4096;
}
