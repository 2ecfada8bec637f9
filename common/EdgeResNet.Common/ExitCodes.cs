using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Common.Imaging;

namespace EdgeResNet.Common;

/// <summary>
/// The exit codes of both programs (edgeresnet and edgeresnet-device) and the one map from a
/// failure to its code. A failure the map does not know is a bug and keeps its stack trace.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0, Usage = 1, BadInput = 2, Unavailable = 3, BelowTarget = 4, Device = 5;

    /// <summary>Runs a command body; known failures become one clear line on stderr and their exit code.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (Classify(Unwrap(e)) is int code)
        {
            Console.Error.WriteLine($"error: {Unwrap(e).Message}");
            return code;
        }
    }

    /// <summary>
    /// The exit code of a failure, or null for one that is a bug (most specific types first). A plain
    /// ArgumentException is a usage error: the runtime and the drivers, which cannot see this map, throw
    /// it for a frame size or camera setting that does not fit; its subclasses (null, out of range) are bugs.
    /// </summary>
    public static int? Classify(Exception e) => e switch
    {
        UsageException or DeviceStringException => Usage,
        ArgumentException when e.GetType() == typeof(ArgumentException) => Usage,
        UnavailableException => Unavailable,
        BelowTargetException => BelowTarget,
        DeviceException => Device,
        FlashImageException or PlanException or Signing.SignatureException or ImageDecodeException or InvalidDataException or FormatException or NotSupportedException
            or UnauthorizedAccessException or IOException => BadInput, // IOException covers file and directory not found
        _ => null,
    };

    /// <summary>The failure inside a parallel loop's AggregateException (the first one; the loop stops at it).</summary>
    public static Exception Unwrap(Exception e) => e is AggregateException a && a.InnerExceptions.Count > 0 ? Unwrap(a.InnerExceptions[0]) : e;
}

/// <summary>A command-line or config mistake: exit code 1. The message says what to give instead.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>A measured figure is below its target (a collapsed model, a device run that disagrees): exit code 4.</summary>
public sealed class BelowTargetException(string message) : Exception(message);

/// <summary>Something the program needs from outside is not there (weights, npm): exit code 3.</summary>
public class UnavailableException(string message) : Exception(message);
