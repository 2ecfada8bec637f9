using EdgeResNet.Drivers.Frames;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Weights;
using Spectre.Console;

namespace EdgeResNet.Cli;

public static class ExitCodes
{
    public const int Ok = 0, Usage = 1, BadInput = 2, Unavailable = 3, BelowTarget = 4, Device = 5;

    /// <summary>Runs a command body; known failures become one clear line on stderr and a meaningful exit code.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (Classify(e) is int code)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return code;
        }
    }

    static int? Classify(Exception e) => e switch
    {
        WeightsException => Unavailable,
        EdgeResNet.Drivers.DeviceStringException => Usage,
        FileNotFoundException or DirectoryNotFoundException or ModelFormatException or ImageDecodeException or FormatException or InvalidDataException
            or EdgeResNet.Runtime.Flash.FlashImageException => BadInput,
        NotSupportedException => BadInput,
        UsageException => Usage,
        EdgeResNet.Drivers.DeviceException => Device,
        _ => null,
    };
}

public sealed class UsageException(string message) : Exception(message);
