using EdgeResNet.Common;
using System.Device.I2c;
using System.Device.Spi;
using System.Diagnostics;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Drivers.ArduCam;

/// <summary>Settings of an <see cref="ArduCamFrameSource"/>.</summary>
public sealed record ArduCamOptions
{
    /// <summary>Output width, a multiple of 4 up to 1600 (the OV2640 scales in steps of 4). Default QVGA 320.</summary>
    public int Width { get; init; } = 320;
    /// <summary>Output height, a multiple of 4 up to 1200. Default 240.</summary>
    public int Height { get; init; } = 240;
    /// <summary><see cref="PixelFormat.Rgb565"/> or <see cref="PixelFormat.Yuyv"/> (the sensor's uncompressed DVP formats).</summary>
    public PixelFormat Format { get; init; } = PixelFormat.Rgb565;
    /// <summary>
    /// The original ArduCam Mini 2MP clocks out one dummy byte after the burst-read command before the FIFO data (ArduCam's
    /// examples discard it); later revisions (Mini 2MP Plus) do not, and ArduCam's advice for them is to not discard it.
    /// A wrong setting shifts every pixel by one byte (colours come out scrambled).
    /// </summary>
    public bool LeadingDummyByte { get; init; } = true;
    /// <summary>How long <see cref="ArduCamFrameSource.Capture"/> waits for the capture-done flag.</summary>
    public TimeSpan CaptureTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Bytes per SPI transfer at most, command byte included (Linux spidev's default bufsiz is 4096).</summary>
    public int MaxTransferBytes { get; init; } = Spidev.DefaultMaxTransferBytes;
    /// <summary>FIFO size of the module: 384 KiB on the Mini 2MP (8 MiB on the 5MP Plus). A frame must fit.</summary>
    public int FifoCapacity { get; init; } = 384 * 1024;
    /// <summary>
    /// FIFO lengths up to this many bytes over width*height*2 are accepted (the extra bytes are not read), since how the
    /// ArduChip's counter ends a frame is not documented exactly. Anything else is an error.
    /// </summary>
    public int FifoLengthSlack { get; init; } = 8;
    /// <summary>Sensor registers written after the soft reset and before the format/size set-up, as (bank, register, value):
    /// the place for a board's tuning table (clock, exposure, white balance). Empty by default.</summary>
    public IReadOnlyList<(byte Bank, byte Register, byte Value)> SensorInit { get; init; } = [];
    /// <summary>Wait after the OV2640 soft reset before further register writes.</summary>
    public TimeSpan ResetDelay { get; init; } = TimeSpan.FromMilliseconds(5);
}

/// <summary>
/// An ArduCam Mini 2MP class camera: an OV2640 sensor configured over SCCB/I2C (<see cref="I2cDevice"/>, address 0x30) and an
/// ArduChip that stores one frame in its FIFO and hands it out over SPI (<see cref="SpiDevice"/>). Each <see cref="Capture"/>
/// clears the done flag and the FIFO pointers, starts a capture, polls the done bit (register 0x41 bit 3) until a timeout,
/// checks the FIFO length (0x42..0x44) against the frame size, burst-reads the FIFO (0x3C) in transfers of at most
/// <see cref="ArduCamOptions.MaxTransferBytes"/>, and returns the frame in our byte order: the OV2640 sends RGB565 high
/// byte first, which is swapped to little-endian <see cref="PixelFormat.Rgb565"/>; YUV422 arrives as Y U Y V, which is
/// <see cref="PixelFormat.Yuyv"/> as is. The returned frame's buffer is reused by the next call. Not thread-safe.
/// </summary>
public sealed class ArduCamFrameSource : IFrameSource
{
    readonly SpiDevice _spi;
    readonly I2cDevice _i2c;
    readonly bool _ownsDevices;
    readonly ArduCamOptions _o;
    readonly int _frameBytes;
    readonly byte[] _data;
    readonly Frame _frame;
    readonly byte[] _tx, _rx;      // burst-read transfer buffers, reused
    readonly byte[] _reg2 = new byte[2], _reg2In = new byte[2];
    bool _disposed;

    public int Width => _o.Width;
    public int Height => _o.Height;
    public PixelFormat Format => _o.Format;
    /// <summary>PIDL of the sensor found (0x40, 0x41 or 0x42: OV2640 revisions).</summary>
    public byte SensorRevision { get; }
    public string Description { get; }

    /// <summary>Opens the camera on Linux bus devices: <c>/dev/spidev{spiBus}.{chipSelect}</c> (mode 0, <paramref name="spiClockHz"/>)
    /// and <c>/dev/i2c-{i2cBus}</c> at 0x30.</summary>
    public static ArduCamFrameSource Open(int spiBus = 0, int chipSelect = 0, int i2cBus = 1, ArduCamOptions? options = null,
        int spiClockHz = 4_000_000)
    {
        SpiDevice? spi = null;
        I2cDevice? i2c = null;
        try
        {
            spi = SpiDevice.Create(new SpiConnectionSettings(spiBus, chipSelect) { Mode = SpiMode.Mode0, ClockFrequency = spiClockHz, DataBitLength = 8 });
            i2c = I2cDevice.Create(new I2cConnectionSettings(i2cBus, Ov2640.I2cAddress));
            return new ArduCamFrameSource(spi, i2c, options, ownsDevices: true);
        }
        catch (Exception e) when (e is not DeviceException and not ArgumentException)
        {
            spi?.Dispose();
            i2c?.Dispose();
            throw new DeviceException($"cannot open the ArduCam on SPI {spiBus}.{chipSelect} / I2C bus {i2cBus}: {e.Message} " +
                "(is SPI and I2C enabled on the board, e.g. dtparam=spi=on and dtparam=i2c_arm=on on a Raspberry Pi?)", e);
        }
    }

    /// <summary>Checks the ArduChip and the sensor and configures the sensor; throws <see cref="DeviceException"/> with the cause.</summary>
    /// <param name="spi">The ArduChip's SPI device (mode 0, ≤ 8 MHz).</param>
    /// <param name="i2c">The OV2640's I2C device (address 0x30).</param>
    /// <param name="options">Size, format, module revision; defaults: 320x240 RGB565, leading dummy byte.</param>
    /// <param name="ownsDevices">Dispose the two devices with this source.</param>
    public ArduCamFrameSource(SpiDevice spi, I2cDevice i2c, ArduCamOptions? options = null, bool ownsDevices = true)
    {
        _spi = spi ?? throw new ArgumentNullException(nameof(spi));
        _i2c = i2c ?? throw new ArgumentNullException(nameof(i2c));
        _ownsDevices = ownsDevices;
        _o = options ?? new ArduCamOptions();
        Validate(_o);
        _frameBytes = _o.Width * _o.Height * 2;
        _data = new byte[_frameBytes];
        _frame = new Frame(_o.Width, _o.Height, _o.Format, _data);
        _tx = new byte[_o.MaxTransferBytes];
        _tx[0] = ArduChip.BurstFifoRead;
        _rx = new byte[_o.MaxTransferBytes];

        try
        {
            CheckArduChip();
            SensorRevision = CheckSensor();
            ConfigureSensor();
            WriteReg(ArduChip.Frames, 0x00);   // one frame per capture
            WriteReg(ArduChip.FifoControl, ArduChip.FifoClearDone);
        }
        catch
        {
            Dispose();
            throw;
        }
        Description = $"ArduCam OV2640 (PIDL 0x{SensorRevision:X2}) on {Where()} {_o.Width}x{_o.Height} {_o.Format}";
    }

    static void Validate(ArduCamOptions o)
    {
        if (o.Format is not (PixelFormat.Rgb565 or PixelFormat.Yuyv))
            throw new ArgumentException($"the OV2640 delivers RGB565 or YUV422 (YUYV) here, not {o.Format}", nameof(o.Format));
        if (o.Width <= 0 || o.Height <= 0 || o.Width % 4 != 0 || o.Height % 4 != 0 || o.Width > Ov2640.MaxWidth || o.Height > Ov2640.MaxHeight)
            throw new ArgumentException($"output size {o.Width}x{o.Height}: width and height must be positive multiples of 4 " +
                $"up to {Ov2640.MaxWidth}x{Ov2640.MaxHeight}", nameof(o.Width));
        if ((long)o.Width * o.Height * 2 > o.FifoCapacity)
            throw new ArgumentException($"a {o.Width}x{o.Height} frame needs {o.Width * o.Height * 2} bytes, more than the " +
                $"{o.FifoCapacity}-byte FIFO of the module; choose a smaller size (320x240 needs 153,600)", nameof(o.Width));
        if (o.MaxTransferBytes < 16) throw new ArgumentOutOfRangeException(nameof(o.MaxTransferBytes), "at least 16 bytes per SPI transfer");
        if (o.CaptureTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(o.CaptureTimeout));
        if (o.FifoLengthSlack < 0) throw new ArgumentOutOfRangeException(nameof(o.FifoLengthSlack));
    }

    string Where()
    {
        string s;
        try { s = $"SPI {_spi.ConnectionSettings.BusId}.{_spi.ConnectionSettings.ChipSelectLine}"; } catch { s = "SPI"; }
        try { s += $" / I2C {_i2c.ConnectionSettings.BusId}:0x{_i2c.ConnectionSettings.DeviceAddress:X2}"; } catch { s += " / I2C"; }
        return s;
    }

    // ---- ArduChip (SPI) -------------------------------------------------------------------------------------------

    void WriteReg(byte address, byte value)
    {
        _reg2[0] = (byte)(address | ArduChip.WriteFlag);
        _reg2[1] = value;
        try { _spi.Write(_reg2); }
        catch (Exception e) when (IsBusError(e)) { throw SpiFailed(e, $"writing ArduChip register 0x{address:X2}"); }
    }

    byte ReadReg(byte address)
    {
        _reg2[0] = (byte)(address & 0x7F);
        _reg2[1] = 0x00;
        try { _spi.TransferFullDuplex(_reg2, _reg2In); }
        catch (Exception e) when (IsBusError(e)) { throw SpiFailed(e, $"reading ArduChip register 0x{address:X2}"); }
        return _reg2In[1];
    }

    // Register accesses catch bus errors in place (no closure or message built per access: status polls
    // run on the capture path); these build the message only when a transfer fails.
    static bool IsBusError(Exception e) => e is IOException or InvalidOperationException or UnauthorizedAccessException or PlatformNotSupportedException;

    DeviceException SpiFailed(Exception e, string what) =>
        new($"SPI transfer failed on {Where()} while {what}: {e.Message} (is SPI enabled and " +
            "the user allowed to open /dev/spidev*, e.g. in the 'spi' group?)", e);

    void CheckArduChip()
    {
        foreach (byte pattern in new byte[] { 0x55, 0xAA })
        {
            WriteReg(ArduChip.Test, pattern);
            byte back = ReadReg(ArduChip.Test);
            if (back != pattern)
                throw new DeviceException($"no ArduChip answers on {Where()}: wrote 0x{pattern:X2} to test register 0x00 and read back " +
                    $"0x{back:X2}{(back is 0x00 or 0xFF ? " (the data line idles: nothing is driving MISO)" : "")}; check the wiring " +
                    "(CS, SCK, MOSI, MISO), the module's power, the chip-select number, SPI mode 0 and a clock of at most 8 MHz");
        }
    }

    // ---- OV2640 (SCCB / I2C) --------------------------------------------------------------------------------------

    void SensorWrite(byte register, byte value)
    {
        _reg2[0] = register;
        _reg2[1] = value;
        try { _i2c.Write(_reg2); }
        catch (Exception e) when (IsBusError(e)) { throw SensorFailed(e, $"writing sensor register 0x{register:X2}"); }
    }

    byte SensorRead(byte register)
    {
        // SCCB has no repeated start: a write of the register address, then a separate one-byte read.
        try
        {
            _i2c.WriteByte(register);
            return _i2c.ReadByte();
        }
        catch (Exception e) when (IsBusError(e)) { throw SensorFailed(e, $"reading sensor register 0x{register:X2}"); }
    }

    DeviceException SensorFailed(Exception e, string what) =>
        new($"no OV2640 answers on {Where()} while {what}: {e.Message}; check the camera's I2C wires " +
            "(SDA, SCL), its power, and that I2C is enabled (`i2cdetect -y 1` should show 30)", e);

    byte CheckSensor()
    {
        SensorWrite(Ov2640.BankSelect, Ov2640.BankSensor);
        byte pidh = SensorRead(Ov2640.Pidh), pidl = SensorRead(Ov2640.Pidl);
        if (pidh != Ov2640.ExpectedPidh || pidl is < 0x40 or > 0x42)
            throw new DeviceException($"the camera sensor is not an OV2640: product ID 0x{pidh:X2}{pidl:X2}, expected 0x2640, 0x2641 or 0x2642 " +
                "(registers 0x0A/0x0B in the sensor bank); this driver is for the ArduCam Mini 2MP (an OV5642 5MP module reports 0x5642)");
        return pidl;
    }

    void ConfigureSensor()
    {
        SensorWrite(Ov2640.BankSelect, Ov2640.BankSensor);
        SensorWrite(Ov2640.Com7, Ov2640.Com7Reset);                 // soft reset: every register to its default
        if (_o.ResetDelay > TimeSpan.Zero) Thread.Sleep(_o.ResetDelay);
        foreach (var (bank, register, value) in _o.SensorInit)
        {
            SensorWrite(Ov2640.BankSelect, bank);
            SensorWrite(register, value);
        }

        SensorWrite(Ov2640.BankSelect, Ov2640.BankDsp);
        SensorWrite(Ov2640.RBypass, 0x01);                           // bypass the DSP while it is changed
        SensorWrite(Ov2640.Reset, Ov2640.ResetDvp);                  // hold the DVP output in reset
        byte mode = _o.Format == PixelFormat.Rgb565 ? Ov2640.ImageModeRgb565 : Ov2640.ImageModeYuv422;   // high byte first, no JPEG, no Y8
        SensorWrite(Ov2640.ImageMode, mode);
        SensorWrite(Ov2640.Ctrl0, (byte)(SensorRead(Ov2640.Ctrl0) & ~Ov2640.Ctrl0VFirst));   // U before V: YUYV, not YVYU
        int w4 = _o.Width / 4, h4 = _o.Height / 4;
        SensorWrite(Ov2640.Zmow, (byte)(w4 & 0xFF));
        SensorWrite(Ov2640.Zmoh, (byte)(h4 & 0xFF));
        SensorWrite(Ov2640.Zmhh, (byte)((w4 >> 8) & 0x03 | ((h4 >> 8) & 0x01) << 2));
        SensorWrite(Ov2640.Reset, 0x00);
        SensorWrite(Ov2640.RBypass, 0x00);                           // DSP on

        if (SensorRead(Ov2640.ImageMode) != mode || SensorRead(Ov2640.Zmow) != (byte)w4 || SensorRead(Ov2640.Zmoh) != (byte)h4)
            throw new DeviceException($"the OV2640 on {Where()} did not keep its format/size registers (IMAGE_MODE 0xDA, ZMOW 0x5A, " +
                "ZMOH 0x5B read back different values); check the I2C wiring and pull-ups");
    }

    // ---- capture --------------------------------------------------------------------------------------------------

    /// <summary>Captures one frame into the FIFO and reads it out. Throws <see cref="DeviceException"/> on a timeout or a FIFO
    /// length that does not match the configured size and format.</summary>
    public Frame? Capture()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        WriteReg(ArduChip.FifoControl, ArduChip.FifoClearDone | ArduChip.FifoResetReadPointer | ArduChip.FifoResetWritePointer);
        WriteReg(ArduChip.FifoControl, ArduChip.FifoStartCapture);

        long start = Stopwatch.GetTimestamp();
        int polls = 0;
        while ((ReadReg(ArduChip.Status) & ArduChip.StatusCaptureDone) == 0)
        {
            if (Stopwatch.GetElapsedTime(start) > _o.CaptureTimeout)
                throw new DeviceException($"ArduCam capture on {Where()} did not finish within {_o.CaptureTimeout.TotalMilliseconds:0} ms " +
                    $"(capture-done bit 0x08 of ArduChip register 0x41 never set, {polls} polls): the sensor delivers no frames; " +
                    "check the sensor's ribbon/power and that its DVP output is enabled");
            polls++;
            if (polls > 8) Thread.Sleep(1);   // a QVGA frame takes tens of milliseconds
        }

        int length = ReadReg(ArduChip.FifoSize1) | ReadReg(ArduChip.FifoSize2) << 8 | (ReadReg(ArduChip.FifoSize3) & 0x7F) << 16;
        if (length < _frameBytes || length > _frameBytes + _o.FifoLengthSlack)
            throw new DeviceException($"the ArduCam FIFO holds {length} bytes after a capture, but a {_o.Width}x{_o.Height} {_o.Format} frame is " +
                $"{_frameBytes} bytes" + (length == 0 ? " (nothing was stored)" : length >= _o.FifoCapacity - 1 ? " (the FIFO is full: frame too large)" : "") +
                "; the sensor's output size or format is not what was configured (JPEG mode, a different size, or a lost register write)");

        ReadFifo();
        WriteReg(ArduChip.FifoControl, ArduChip.FifoClearDone);
        return _frame;
    }

    /// <summary>Burst-reads <see cref="_frameBytes"/> FIFO bytes into <see cref="_data"/> in our byte order.</summary>
    void ReadFifo()
    {
        int header = 1 + (_o.LeadingDummyByte ? 1 : 0);   // command byte, then the dummy byte if the module has one
        int perTransfer = _o.MaxTransferBytes - header;
        perTransfer -= perTransfer % 2;                    // keep 16-bit pixels whole within a transfer
        int done = 0;
        while (done < _frameBytes)
        {
            int n = Math.Min(perTransfer, _frameBytes - done);
            var tx = _tx.AsSpan(0, header + n);
            var rx = _rx.AsSpan(0, header + n); // tx: the burst command then zeros, set once in the constructor
            try { _spi.TransferFullDuplex(tx, rx); }
            catch (Exception e) when (IsBusError(e)) { throw SpiFailed(e, $"doing the burst read of the FIFO at byte {done} of {_frameBytes}"); }
            var src = rx[header..];
            var dst = _data.AsSpan(done, n);
            if (_o.Format == PixelFormat.Rgb565)
                for (int i = 0; i < n; i += 2) { dst[i] = src[i + 1]; dst[i + 1] = src[i]; }   // high byte first -> little-endian
            else
                src.CopyTo(dst);                                                          // Y U Y V, already our Yuyv
            done += n;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsDevices)
        {
            _spi.Dispose();
            _i2c.Dispose();
        }
    }
}
