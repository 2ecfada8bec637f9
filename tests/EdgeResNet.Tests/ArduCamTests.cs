using EdgeResNet.Common;
using EdgeResNet.Drivers.ArduCam;
using EdgeResNet.Drivers.Emulation;
using EdgeResNet.Flashing.Emulation;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Tests;

/// <summary>
/// The ArduCam Mini 2MP driver against the emulated ArduChip + OV2640 (Emulation/ArduCamEmulator.cs, written from the
/// documentation; no real module is attached here). Expected pixels are computed in this file, independently of the emulator.
/// </summary>
[TestClass]
public sealed class ArduCamTests
{
    static readonly ArduCamOptions Fast = new() { ResetDelay = TimeSpan.Zero, CaptureTimeout = TimeSpan.FromSeconds(5) };

    /// <summary>A deterministic scene with gradients, pure black/white and saturated corners.</summary>
    static byte[] Scene(int w, int h)
    {
        var rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = (y * w + x) * 3;
                rgb[i] = (byte)(x * 7 + y * 3);
                rgb[i + 1] = (byte)(x * y + 50);
                rgb[i + 2] = (byte)(255 - x + y * 5);
            }
        void Set(int x, int y, byte r, byte g, byte b) { int i = (y * w + x) * 3; rgb[i] = r; rgb[i + 1] = g; rgb[i + 2] = b; }
        Set(0, 0, 0, 0, 0); Set(1, 0, 255, 255, 255); Set(w - 1, 0, 255, 0, 0); Set(w - 2, 0, 0, 0, 255);
        Set(0, h - 1, 0, 255, 0); Set(1, h - 1, 255, 0, 255);
        return rgb;
    }

    static (int R, int G, int B) At(byte[] rgb, int w, int x, int y) { int i = (y * w + x) * 3; return (rgb[i], rgb[i + 1], rgb[i + 2]); }

    static ArduCamFrameSource Open(ArduCamEmulator cam, ArduCamOptions options) => new(cam.Spi, cam.Sensor, options);

    static void AssertRgb565(Frame f, byte[] scene, int sceneW, int sceneH)
    {
        Assert.AreEqual(PixelFormat.Rgb565, f.Format);
        Assert.AreEqual(f.Width * 2, f.Stride);
        for (int y = 0; y < f.Height; y++)
            for (int x = 0; x < f.Width; x++)
            {
                var (r, g, b) = At(scene, sceneW, x * sceneW / f.Width, y * sceneH / f.Height);
                int expected = (r >> 3) << 11 | (g >> 2) << 5 | (b >> 3);
                int i = y * f.Stride + x * 2;
                int got = f.Data[i] | f.Data[i + 1] << 8;   // our Rgb565 is little-endian
                if (got != expected) Assert.Fail($"pixel ({x},{y}) rgb ({r},{g},{b}): expected 0x{expected:X4}, got 0x{got:X4}");
            }
    }

    [TestMethod]
    public void Rgb565FrameMatchesTheSceneInEveryPixel()
    {
        var scene = Scene(320, 240);
        var cam = new ArduCamEmulator(scene, 320, 240);
        using var source = Open(cam, Fast with { Width = 320, Height = 240, Format = PixelFormat.Rgb565 });
        var f = source.Capture()!;
        Assert.AreEqual(320, f.Width);
        Assert.AreEqual(240, f.Height);
        AssertRgb565(f, scene, 320, 240);
        StringAssert.Contains(source.Description, "320x240 Rgb565");
        Assert.AreEqual(0x42, source.SensorRevision);
    }

    [TestMethod]
    public void YuyvFrameMatchesBt601OfTheSceneInEveryPixel()
    {
        var scene = Scene(160, 120);
        var cam = new ArduCamEmulator(scene, 160, 120);
        using var source = Open(cam, Fast with { Width = 160, Height = 120, Format = PixelFormat.Yuyv });
        var f = source.Capture()!;
        Assert.AreEqual(PixelFormat.Yuyv, f.Format);
        Assert.AreEqual(320, f.Stride);

        static int Y(int r, int g, int b) => ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
        static int U(int r, int g, int b) => ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
        static int V(int r, int g, int b) => ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
        Assert.AreEqual(16, Y(0, 0, 0));
        Assert.AreEqual(235, Y(255, 255, 255));
        Assert.AreEqual(128, U(255, 255, 255));
        Assert.AreEqual(240, V(255, 0, 0));
        for (int y = 0; y < 120; y++)
            for (int x = 0; x < 160; x += 2)
            {
                var (r0, g0, b0) = At(scene, 160, x, y);
                var (r1, g1, b1) = At(scene, 160, x + 1, y);
                int i = y * f.Stride + x * 2;
                int[] expected = [Y(r0, g0, b0), (U(r0, g0, b0) + U(r1, g1, b1) + 1) / 2, Y(r1, g1, b1), (V(r0, g0, b0) + V(r1, g1, b1) + 1) / 2];
                for (int k = 0; k < 4; k++)
                    if (f.Data[i + k] != expected[k])
                        Assert.Fail($"pixels ({x},{y})-({x + 1},{y}) byte {k} ({"YUYV"[k]}): expected {expected[k]}, got {f.Data[i + k]}");
            }
    }

    [TestMethod]
    public void TheSensorScalesTheSceneToTheConfiguredSize()
    {
        var scene = Scene(320, 240);
        var cam = new ArduCamEmulator(scene, 320, 240);
        using var source = Open(cam, Fast with { Width = 160, Height = 120 });
        AssertRgb565(source.Capture()!, scene, 320, 240);
    }

    [TestMethod]
    public void FifoReadsAreSplitIntoTransfersOfAtMost4096Bytes()
    {
        var scene = Scene(320, 240);
        var cam = new ArduCamEmulator(scene, 320, 240);
        using var source = Open(cam, Fast);
        cam.TransferLengths.Clear();
        AssertRgb565(source.Capture()!, scene, 320, 240);

        var bursts = cam.TransferLengths.Where(n => n > 2).ToList();   // register accesses are 2-byte transactions
        Assert.IsTrue(cam.TransferLengths.All(n => n <= 4096), "a transfer exceeded spidev's 4096 bytes");
        Assert.AreEqual(4096, bursts.Max());
        // each burst transaction: command byte + dummy byte + data; the data adds up to exactly one frame
        Assert.AreEqual(320 * 240 * 2, bursts.Sum(n => n - 2));
        Assert.AreEqual((320 * 240 * 2 + 4093) / 4094, bursts.Count);

        // a transfer size the bus driver refuses (the emulator fails like spidev's EMSGSIZE) surfaces as a DeviceException
        var cam2 = new ArduCamEmulator(scene, 320, 240);
        using var big = Open(cam2, Fast with { MaxTransferBytes = 8192 });
        var e = Assert.ThrowsExactly<DeviceException>(() => big.Capture());
        StringAssert.Contains(e.Message, "burst read");
    }

    [TestMethod]
    public void AModuleWithoutTheLeadingDummyByteReadsCorrectlyWhenToldSo()
    {
        var scene = Scene(160, 120);
        var plus = new ArduCamEmulator(scene, 160, 120) { LeadingDummyByte = false };
        using (var source = Open(plus, Fast with { Width = 160, Height = 120, LeadingDummyByte = false }))
            AssertRgb565(source.Capture()!, scene, 160, 120);

        // the wrong setting shifts every byte: the frame is not the scene
        var plus2 = new ArduCamEmulator(scene, 160, 120) { LeadingDummyByte = false };
        using var wrong = Open(plus2, Fast with { Width = 160, Height = 120, LeadingDummyByte = true });
        Assert.ThrowsExactly<AssertFailedException>(() => AssertRgb565(wrong.Capture()!, scene, 160, 120));
    }

    [TestMethod]
    public void CapturesRepeatAndReuseTheFrameBuffer()
    {
        var scene = Scene(160, 120);
        var cam = new ArduCamEmulator(scene, 160, 120);
        using var source = Open(cam, Fast with { Width = 160, Height = 120 });
        var a = source.Capture()!;
        var b = source.Capture()!;
        Assert.AreSame(a.Data, b.Data);
        Assert.AreEqual(2, cam.FramesCaptured);
        AssertRgb565(b, scene, 160, 120);
    }

    [TestMethod]
    public void NoArduChipOnTheBusIsReportedClearly()
    {
        var cam = new ArduCamEmulator(Scene(8, 8), 8, 8) { ChipPresent = false };
        var e = Assert.ThrowsExactly<DeviceException>(() => Open(cam, Fast));
        StringAssert.Contains(e.Message, "no ArduChip answers on SPI");
        StringAssert.Contains(e.Message, "read back 0xFF");
    }

    [TestMethod]
    public void AWrongSensorIdIsReportedClearly()
    {
        var cam = new ArduCamEmulator(Scene(8, 8), 8, 8) { ProductIdHigh = 0x56, ProductIdLow = 0x42 };   // an OV5642
        var e = Assert.ThrowsExactly<DeviceException>(() => Open(cam, Fast));
        StringAssert.Contains(e.Message, "not an OV2640: product ID 0x5642");
    }

    [TestMethod]
    public void AMissingSensorIsReportedClearly()
    {
        var cam = new ArduCamEmulator(Scene(8, 8), 8, 8) { SensorPresent = false };
        var e = Assert.ThrowsExactly<DeviceException>(() => Open(cam, Fast));
        StringAssert.Contains(e.Message, "no OV2640 answers");
    }

    [TestMethod]
    public void ACaptureThatNeverFinishesTimesOut()
    {
        var cam = new ArduCamEmulator(Scene(8, 8), 8, 8) { FramesNeverArrive = true };
        using var source = Open(cam, Fast with { Width = 160, Height = 120, CaptureTimeout = TimeSpan.FromMilliseconds(60) });
        var e = Assert.ThrowsExactly<DeviceException>(() => source.Capture());
        StringAssert.Contains(e.Message, "did not finish within 60 ms");
        StringAssert.Contains(e.Message, "register 0x41");
    }

    [TestMethod]
    public void AFifoLengthThatIsNotOneFrameIsReportedClearly()
    {
        var cam = new ArduCamEmulator(Scene(160, 120), 160, 120);
        using var source = Open(cam, Fast with { Width = 160, Height = 120 });
        // something else switches the sensor to JPEG behind the driver's back
        cam.Sensor.Write([Ov2640.BankSelect, Ov2640.BankDsp]);
        cam.Sensor.Write([Ov2640.ImageMode, Ov2640.ImageModeJpeg]);
        var e = Assert.ThrowsExactly<DeviceException>(() => source.Capture());
        StringAssert.Contains(e.Message, "FIFO holds 1920 bytes");
        StringAssert.Contains(e.Message, "frame is 38400 bytes");
    }

    [TestMethod]
    public void AFrameLargerThanTheFifoIsRefusedUpFront()
    {
        var cam = new ArduCamEmulator(Scene(8, 8), 8, 8);
        var e = Assert.ThrowsExactly<ArgumentException>(() => Open(cam, Fast with { Width = 640, Height = 480 }));
        StringAssert.Contains(e.Message, "614400 bytes");
        Assert.ThrowsExactly<ArgumentException>(() => Open(cam, Fast with { Width = 322 }));
        Assert.ThrowsExactly<ArgumentException>(() => Open(cam, Fast with { Format = PixelFormat.Rgb24 }));
    }

    [TestMethod]
    public void EmulatedSensorHasBanksAndASoftReset()
    {
        var s = new ArduCamEmulator(Scene(8, 8), 8, 8).Sensor;
        byte Read(byte reg) { s.WriteByte(reg); return s.ReadByte(); }
        Assert.AreEqual(0x26, Read(Ov2640.Pidh), "after power-up the bank register selects the sensor bank");
        s.Write([Ov2640.BankSelect, Ov2640.BankDsp]);
        Assert.AreEqual(0x00, Read(Ov2640.Pidh), "0x0A in the DSP bank is not the product ID");
        Assert.AreEqual(0x58, Read(Ov2640.Zmow));
        s.Write([Ov2640.Zmow, 0x28]);
        Assert.AreEqual(0x28, Read(Ov2640.Zmow));
        s.Write([Ov2640.BankSelect, Ov2640.BankSensor]);
        Assert.AreEqual(0x42, Read(Ov2640.Pidl));
        s.Write([Ov2640.Pidl, 0x00]);
        Assert.AreEqual(0x42, Read(Ov2640.Pidl), "ID registers are read-only");
        s.Write([Ov2640.Com7, Ov2640.Com7Reset]);
        s.Write([Ov2640.BankSelect, Ov2640.BankDsp]);
        Assert.AreEqual(0x58, Read(Ov2640.Zmow), "the soft reset restores the defaults");
    }

    [TestMethod]
    public void UnconfiguredSensorSendsItsDefaultCifYuvFrame()
    {
        // Drive the emulated chip by hand, without the driver: the power-up sensor sends 352x288 YUV422.
        var cam = new ArduCamEmulator(Scene(352, 288), 352, 288);
        var spi = cam.Spi;
        byte Reg(byte a) { var rx = new byte[2]; spi.TransferFullDuplex([a, 0], rx); return rx[1]; }
        spi.Write([ArduChip.FifoControl | ArduChip.WriteFlag, ArduChip.FifoStartCapture]);
        while ((Reg(ArduChip.Status) & ArduChip.StatusCaptureDone) == 0) { }
        int length = Reg(ArduChip.FifoSize1) | Reg(ArduChip.FifoSize2) << 8 | Reg(ArduChip.FifoSize3) << 16;
        Assert.AreEqual(352 * 288 * 2, length);
        // single FIFO reads (0x3D) give the same bytes as a burst
        var tx = new byte[6]; tx[0] = ArduChip.BurstFifoRead;
        var burst = new byte[6];
        spi.TransferFullDuplex(tx, burst);
        spi.Write([ArduChip.FifoControl | ArduChip.WriteFlag, ArduChip.FifoResetReadPointer]);
        var singles = Enumerable.Range(0, 4).Select(_ => Reg(ArduChip.SingleFifoRead)).ToArray();
        CollectionAssert.AreEqual(burst[2..], singles);
    }
}
