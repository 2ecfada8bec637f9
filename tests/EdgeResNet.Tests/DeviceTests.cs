using System.Device.Gpio;
using System.Diagnostics;
using EdgeResNet.Device;
using EdgeResNet.Drivers.ArduCam;
using EdgeResNet.Drivers.Emulation;
using EdgeResNet.Flashing.Emulation;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Drivers.Gpio;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>
/// The board app's path from sensor bytes to a label: the real ResNet-50 (10-bit, separate BN)
/// programmed into the emulated SPI NOR chip, frames from the emulated ArduCam and from the folder
/// source in RGB565 and YUYV, the status LED and button on the simulated GPIO driver; and the
/// app's command line (exit codes and messages) as a user meets it.
/// </summary>
[TestClass]
public sealed class DeviceTests
{
    static (QModel Model, byte[] Image) Real() => RealModelTests.Quantized(BnScheme.Separate);

    /// <summary>The image in an emulated W25Q512JV, programmed through the driver at 1 MiB.</summary>
    static (SpiNorFlash Nor, FlashImage Image) OnEmulatedChip(byte[] image)
    {
        var nor = new SpiNorFlash(new SpiNorChip());
        nor.Erase(1 << 20, (image.Length + 4095) / 4096 * 4096L);
        nor.Program(1 << 20, image);
        return (nor, FlashImage.Open(nor.Region(1 << 20, image.Length), verifySections: false));
    }

    /// <summary>Top-1 of the tools' path on the same frame: float colour conversion, float preprocessing, integer simulator.</summary>
    static int ToolsTop1(QModel model, Frame frame) =>
        Evaluator.TopK(new IntegerSimulator(model).Run(Quantizer.QuantizeInput(CaffePreprocessing.Run(FloatColour.ToRgb(frame)), model)), 1)[0];

    [TestMethod]
    [DataRow(PixelFormat.Rgb565)]
    [DataRow(PixelFormat.Yuyv)]
    public void ArduCamFramesBecomeLabelsWithWeightsFromTheSpiNorChip(PixelFormat format)
    {
        var (model, bytes) = Real();
        var photo = Dataset.Load(SampleImages.DirOrInconclusive(), Split.Evaluation).First();
        var qvga = PillowResize.Bilinear(RgbImage.Load(photo.Path), 320, 240);
        var camera = new ArduCamEmulator(qvga.Pixels, 320, 240);
        using var source = new ArduCamFrameSource(camera.Spi, camera.Sensor, new ArduCamOptions { Width = 320, Height = 240, Format = format, ResetDelay = TimeSpan.Zero });
        var (nor, image) = OnEmulatedChip(bytes);
        var gpio = new SimulatedGpioDriver();
        using var controller = new GpioController(gpio);
        using var pins = new StatusPins(controller, ledPin: 17, buttonPin: -1);

        var results = new List<FrameResult>();
        int n = new FrameClassifier(image, source, pins, () => nor.BytesRead).Run(2, CancellationToken.None, results.Add);

        Assert.AreEqual(2, n);
        var frame = source.Capture()!; // the emulator serves the same scene every time
        Assert.AreEqual(format, frame.Format);
        Assert.AreEqual(ToolsTop1(model, frame), results[0].Top5[0], "top-1 of the integer path equals the tools' float path on the same frame");
        Assert.AreEqual(photo.ClassIndex, results[0].Top5[0], $"{photo.FileName} is classified as its label");
        CollectionAssert.AreEqual(results[0].Logits, results[1].Logits, "the same frame gives the same logits");
        Assert.IsGreaterThan(bytes.Length, results[0].BusBytes, "every weight crosses the SPI bus at least once per frame");
        CollectionAssert.AreEqual(new[] { (17, PinValue.Low), (17, PinValue.High), (17, PinValue.Low), (17, PinValue.High), (17, PinValue.Low) },
            gpio.Writes.ToArray(), "LED off at start, lit during each frame");
    }

    [TestMethod]
    [DataRow(PixelFormat.Rgb565)]
    [DataRow(PixelFormat.Yuyv)]
    public void FolderFramesOnButtonPressesBecomeTheToolsLabels(PixelFormat format)
    {
        var (model, bytes) = Real();
        string dir = SampleImages.DirOrInconclusive();
        var image = FlashImage.Open(new MemoryFlash(bytes));
        using var source = new ImageFolderSource(dir, format);
        var gpio = new SimulatedGpioDriver();
        using var controller = new GpioController(gpio);
        using var pins = new StatusPins(controller, ledPin: 5, buttonPin: 6);
        using var cancel = new CancellationTokenSource();
        var results = new List<FrameResult>();
        // Two presses, then Ctrl+C while the app waits for the third.
        var presser = Task.Run(async () =>
        {
            for (int i = 0; i < 2; i++) { await Task.Delay(50); gpio.Press(6); while (results.Count <= i) await Task.Delay(10); }
            await Task.Delay(50);
            cancel.Cancel();
        });
        int n = new FrameClassifier(image, source, pins).Run(0, cancel.Token, results.Add);
        presser.Wait();

        Assert.AreEqual(2, n);
        var files = Directory.EnumerateFiles(dir).Where(ImageFile.IsPhoto).Order(StringComparer.Ordinal).Take(2).ToArray();
        for (int i = 0; i < 2; i++)
        {
            Assert.AreEqual(files[i], results[i].Source);
            var frame = SensorFormat.FromRgb24(ImageFile.Decode(files[i]), format);
            Assert.AreEqual(ToolsTop1(model, frame), results[i].Top5[0], files[i]);
        }
        Assert.AreEqual(PinValue.Low, gpio.Level(5), "LED off after the loop");
    }

    [TestMethod]
    public void TheButtonIsDebouncedAndOnePressWaitsWhileBusy()
    {
        var gpio = new SimulatedGpioDriver();
        using var controller = new GpioController(gpio);
        using var pins = new StatusPins(controller, ledPin: -1, buttonPin: 6);
        bool Pressed(int ms)
        {
            using var timeout = new CancellationTokenSource(ms);
            return pins.WaitForPress(timeout.Token);
        }
        Assert.IsFalse(Pressed(50), "no press yet");
        // One press whose contacts bounce four times in under a millisecond: one press, not three.
        foreach (var level in new[] { PinValue.Low, PinValue.High, PinValue.Low, PinValue.High, PinValue.Low }) gpio.Drive(6, level);
        Thread.Sleep(60);
        gpio.Drive(6, PinValue.High);
        Assert.IsTrue(Pressed(1000));
        Assert.IsFalse(Pressed(50), "the bounces were not presses");
        // Two clean presses while the app is busy ask for one more frame, not two.
        Thread.Sleep(2 * StatusPins.Debounce.Milliseconds);
        gpio.Press(6);
        Thread.Sleep(2 * StatusPins.Debounce.Milliseconds);
        gpio.Press(6);
        Assert.IsTrue(Pressed(1000));
        Assert.IsFalse(Pressed(50));
    }

    [TestMethod]
    public void ABoardNameSuppliesItsBusesAndGuardsTheirPins()
    {
        var pi = EdgeResNet.Device.BoardProfile.Get("rpi4");
        // The README's wiring: ArduCam on SPI0 CE0 and I2C1, the flash chip on SPI0 CE1.
        Assert.AreEqual("spi:0,1", pi.Image("spi:"));
        Assert.AreEqual("slots:spi:0,1", pi.Image("slots:spi:"));
        Assert.AreEqual("slots:spi:1,0", pi.Image("slots:spi:1,0"), "a given bus stays");
        Assert.AreEqual("arducam:0,0,1", pi.Camera("arducam:"));
        Assert.AreEqual(28, pi.PinCount);
        // Iot.Device.Board's tables: SPI0 on GPIO 9, 10, 11 with CE0 on 8 and CE1 on 7; I2C1 on 2 and 3.
        CollectionAssert.AreEquivalent(new[] { 2, 3, 7, 8, 9, 10, 11 }, pi.BusPins.Keys.ToArray());
        pi.CheckPin(17, "--led", flashOnSpi: true, arducam: true);
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.UsageException>(() => pi.CheckPin(10, "--led", flashOnSpi: true, arducam: false)).Message, "SPI0 MOSI");
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.UsageException>(() => pi.CheckPin(2, "--button", flashOnSpi: true, arducam: true)).Message, "I2C1 SDA");
        pi.CheckPin(2, "--button", flashOnSpi: true, arducam: false); // no camera on I2C: the pin is free
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.UsageException>(() => pi.CheckPin(30, "--led", true, true)).Message, "GPIO 0..27");
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.UsageException>(() => EdgeResNet.Device.BoardProfile.Get("esp32")).Message, "rpi4");
    }

    [TestMethod]
    public void GpioMistakesAreClearErrors()
    {
        using var controller = new GpioController(new SimulatedGpioDriver(pinCount: 28));
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.DeviceException>(() => new StatusPins(controller, 40, -1)).Message, "pins 0..27");
        StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.DeviceException>(() => new StatusPins(controller, 4, 4)).Message, "different pins");
    }

    // --- the app's command line, as a user meets it ---

    static (int Code, string Out, string Err) App(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "edgeresnet-device.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        Assert.IsTrue(p.WaitForExit(60_000), "the app hung");
        return (p.ExitCode, stdout.Result, err);
    }

    static string MiniImage(string dir)
    {
        string path = Path.Combine(dir, "mini.img");
        File.WriteAllBytes(path, RuntimeTests.MiniPacked(new QuantOptions()).Image);
        return path;
    }

    [TestMethod]
    public void AppClassifiesAFolderAndWritesLogits()
    {
        string dir = SampleImages.DirOrInconclusive();
        string tmp = Directory.CreateTempSubdirectory("edgeresnet-device-").FullName;
        try
        {
            string img = MiniImage(tmp), logits = Path.Combine(tmp, "logits.tsv");
            var (code, stdout, err) = App("run", "--image", img, "--camera", $"folder:{dir},Yuyv", "--frames", "2", "--logits-out", logits);
            Assert.AreEqual(0, code, err);
            StringAssert.Contains(stdout, "frame 2 ");
            StringAssert.Contains(stdout, "done: 2 frame(s)");
            Assert.HasCount(2, File.ReadAllLines(logits));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [TestMethod]
    public void AppMisconfigurationsAreClearErrorsWithExitCodes()
    {
        string dir = SampleImages.DirOrInconclusive();
        string tmp = Directory.CreateTempSubdirectory("edgeresnet-device-").FullName;
        try
        {
            string img = MiniImage(tmp);
            string corrupt = Path.Combine(tmp, "corrupt.img");
            var bytes = File.ReadAllBytes(img);
            bytes[40] ^= 0x10;
            File.WriteAllBytes(corrupt, bytes);
            string empty = Directory.CreateDirectory(Path.Combine(tmp, "empty")).FullName;
            // A flipped bit in the last conv's weights: the header and tables are fine, the first frame finds it.
            string badWeights = Path.Combine(tmp, "bad-weights.img");
            QLayer last;
            using (var f = new FileFlash(img)) last = FlashImage.Open(f).Model.Layers.Last(x => x.WeightsSize > 0);
            var weightsFlip = File.ReadAllBytes(img);
            weightsFlip[last.WeightsOffset + last.WeightsSize / 2] ^= 0x04;
            File.WriteAllBytes(badWeights, weightsFlip);
            string badConfig = Path.Combine(tmp, "bad.json");
            File.WriteAllText(badConfig, "{\"image\": \"x.img\", \"camrea\": \"folder:/tmp\"}");
            var cases = new (string[] Args, int Code, string Message)[]
            {
                (["run", "--camera", $"folder:{dir}"], 1, "no flash image"),
                (["run", "--image", Path.Combine(tmp, "missing.img"), "--camera", $"folder:{dir}"], 2, "not found"),
                (["run", "--image", corrupt, "--camera", $"folder:{dir}"], 2, "header"),
                (["run", "--image", badWeights, "--camera", $"folder:{dir}"], 2, $"layer '{last.Name}': weights section CRC mismatch"),
                (["run", "--image", img, "--camera", "webcam:0"], 1, "unknown camera"),
                (["run", "--image", img, "--camera", $"folder:{dir},Rgb666"], 1, "unsupported pixel format 'Rgb666'"),
                (["run", "--image", img, "--camera", $"folder:{empty}"], 5, "no photos"),
                (["run", "--image", img, "--camera", "v4l2:/dev/video77"], 5, "no camera at /dev/video77"),
                (["run", "--image", img, "--camera", "arducam:9,0,9"], 5, "ArduCam on SPI 9.0"),
                (["run", "--image", "spi:9,0", "--camera", $"folder:{dir}"], 5, "/dev/spidev9.0"),
                (["run", "--image", img, "--camera", $"folder:{dir}", "--led", "17", "--gpio-chip", "9"], 5, "gpiochip9"),
                (["run", "--config", badConfig], 1, "camrea"),
                (["run", "--image", img, "--camera", $"folder:{dir}", "--frames", "0"], 1, "--frames 0: give 1 or more"),
                (["run", "--image", img, "--camera", $"folder:{dir}", "--led", "-1"], 1, "--led -1: a GPIO pin"),
            };
            foreach (var (args, code, message) in cases)
            {
                var (actual, _, err) = App(args);
                Assert.AreEqual(code, actual, $"{string.Join(' ', args)}: {err}");
                StringAssert.Contains(err, message, string.Join(' ', args));
            }
        }
        finally { Directory.Delete(tmp, true); }
    }
}
