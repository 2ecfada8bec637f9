using EdgeResNet.Common;
namespace EdgeResNet.Flashing.Loader;

/// <summary>NAK codes. Only <see cref="Crc"/> makes the host resend; the others are final.</summary>
public enum LoaderError : byte
{
    /// <summary>The board received a corrupt frame (bad CRC or length): resend.</summary>
    Crc = 1,
    /// <summary>Unknown request type or a payload of the wrong size.</summary>
    BadRequest = 2,
    /// <summary>The request does not fit the state (DATA before BEGIN, DATA after COMMIT).</summary>
    State = 3,
    /// <summary>Offset or length outside the announced image, or not aligned.</summary>
    Range = 4,
    /// <summary>The image does not fit a slot.</summary>
    TooLarge = 5,
    /// <summary>COMMIT found the image incomplete or invalid.</summary>
    Verify = 6,
    /// <summary>The host speaks another protocol version.</summary>
    Version = 7,
    /// <summary>The flash failed (erase, program or verify).</summary>
    Device = 8,
    /// <summary>The board trusts signing keys and the image or its manifest is not signed by one of them.</summary>
    Unauthenticated = 9,
    /// <summary>The image's security counter is below the booting image's: a downgrade.</summary>
    Rollback = 10,
    /// <summary>A per-session bound was reached (a sector erased twice, too many chunks, a second full check).</summary>
    Limit = 11,
}

/// <summary>A loader request refused by the board (or by <see cref="SlotStore"/> directly), with its NAK code.</summary>
public class LoaderException(LoaderError code, string message) : DeviceException(message)
{
    public LoaderError Code { get; } = code;
}
