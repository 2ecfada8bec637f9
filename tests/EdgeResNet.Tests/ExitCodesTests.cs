using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Weights;

namespace EdgeResNet.Tests;

/// <summary>The one failure-to-exit-code map that edgeresnet and edgeresnet-device both use.</summary>
[TestClass]
public sealed class ExitCodesTests
{
    [TestMethod]
    public void EachFailureHasItsExitCode()
    {
        var expected = new (Exception Failure, int? Code)[]
        {
            (new UsageException("x"), 1), (new DeviceStringException("x"), 1), (new ArgumentException("x"), 1),
            (new FileNotFoundException("x"), 2), (new DirectoryNotFoundException("x"), 2), (new UnauthorizedAccessException("x"), 2),
            (new FlashImageException("x"), 2), (new ImageDecodeException("p", "x"), 2), (new ModelFormatException("x"), 2), (new InvalidDataException("x"), 2),
            (new WeightsException("x"), 3),
            (new DeviceException("x"), 5), (new LoaderException(LoaderError.Verify, "x"), 5),
            (new FormatException("x"), 2), (new NotSupportedException("x"), 2), (new IOException("x"), 2),
            (new InvalidOperationException("a bug"), null), (new NullReferenceException(), null),
            (new ArgumentNullException("x"), null), (new ArgumentOutOfRangeException("x"), null),
        };
        foreach (var (failure, code) in expected) Assert.AreEqual(code, ExitCodes.Classify(failure), failure.GetType().Name);
    }

    [TestMethod]
    public void GuardPrintsOneLineAndReturnsTheCode()
    {
        var stderr = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            Assert.AreEqual(ExitCodes.Device, ExitCodes.Guard(() => throw new DeviceException("no chip answers on /dev/spidev0.1")));
            Assert.AreEqual(ExitCodes.Ok, ExitCodes.Guard(() => ExitCodes.Ok));
            Assert.ThrowsExactly<InvalidOperationException>(() => ExitCodes.Guard(() => throw new InvalidOperationException("a bug keeps its stack trace")));
        }
        finally { Console.SetError(stderr); }
        Assert.AreEqual("error: no chip answers on /dev/spidev0.1" + Environment.NewLine, captured.ToString());
    }
}
