using EdgeResNet.Common;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Drivers.Frames;
using System.Device.I2c;
using System.Device.Spi;
using EdgeResNet.Drivers.ArduCam;

namespace EdgeResNet.Drivers.Emulation;

/// <summary>
/// An emulation of an ArduCam Mini 2MP module, written from the ArduCam and OV2640 documentation (ArduChip register map of
/// ArduCam's reference driver, OV2640 datasheet register tables) — not a recording of, nor a test against, real hardware.
/// It pairs an emulated ArduChip (<see cref="Spi"/>, a <see cref="SpiDevice"/>) with an emulated OV2640 (<see cref="Sensor"/>,
/// an <see cref="I2cDevice"/>), looking at a known scene: the RGB24 image given to the constructor. When a capture is started
/// the sensor's current output, in the format and size its registers select, is written into the FIFO exactly as the chip
/// would store it, and the driver reads it back over the emulated SPI protocol.
/// <para>What is emulated:</para>
/// <list type="bullet">
/// <item>ArduChip: one SPI transaction per <see cref="SpiDevice"/> call (chip select held through it); command byte bit 7 =
/// write; registers 0x00 (test), 0x01 (frames - 1), 0x03 (timing, stored), 0x04 (FIFO control: 0x01 clears the done flag,
/// 0x02 starts a capture, 0x10/0x20 reset the read/write pointer), 0x41 (bit 3 capture done, bit 0 VSYNC), 0x42..0x44
/// (write pointer, 23 bits), 0x3C burst and 0x3D single FIFO reads; a FIFO of <see cref="FifoCapacity"/> bytes (writes past
/// it are lost); the leading dummy byte of the original Mini 2MP on every burst transaction (<see cref="LeadingDummyByte"/>);
/// transfers longer than <see cref="MaxTransferBytes"/> fail like Linux spidev (EMSGSIZE); an absent chip reads 0xFF.</item>
/// <item>OV2640: register bank select 0xFF (0 DSP, 1 sensor), separate register files per bank, product/manufacturer IDs
/// in the sensor bank (the same addresses in the DSP bank are ordinary DSP registers and read otherwise), soft reset by
/// COM7 bit 7 (all registers back to defaults, bank select to 0x7F i.e. sensor bank), IMAGE_MODE 0xDA (YUV422 / RAW10 /
/// RGB565 / JPEG / Y8, low-byte-first swap), CTRL0 0xC2 VFIRST (YVYU), output size from ZMOW/ZMOH/ZMHH (0x5A..0x5C,
/// default 0x58/0x48/0x00 = 352x288 CIF), R_BYPASS 0x05 (DSP bypass: raw sensor bytes), RESET 0xE0 bit 2 (DVP held in
/// reset: no frames, so a capture never completes). SCCB writes carry one register per transaction; reads return the
/// register addressed by the previous write. An absent sensor does not acknowledge (IOException, as Linux i2c-dev).</item>
/// </list>
/// <para>What is modelled simply: the scene is resampled to the output size by nearest neighbour; no exposure, white balance,
/// gamma or noise (the DSP passes the scene's RGB through), and the sensor window/divider registers are not emulated. YUV422 is
/// computed with the BT.601 limited-range integer formulas: Y = ((66R + 129G + 25B + 128) &gt;&gt; 8) + 16,
/// U = ((-38R - 74G + 112B + 128) &gt;&gt; 8) + 128, V = ((112R - 94G - 18B + 128) &gt;&gt; 8) + 128 per pixel, and each pair of
/// pixels carries the rounded mean (a + b + 1) / 2 of their U and of their V. RGB565 is (R &gt;&gt; 3) &lt;&lt; 11 | (G &gt;&gt; 2) &lt;&lt; 5 | B &gt;&gt; 3,
/// high byte first. Raw/RAW10/Y8 output is one byte per pixel (Bayer RGGB 8 bits, or Y); JPEG output is a short stream
/// framed by FF D8 … FF D9 of a scene-dependent length — right in length behaviour only, not a decodable JPEG.</para>
/// </summary>
public sealed class ArduCamEmulator
{
    readonly byte[] _scene;
    readonly int _sceneWidth, _sceneHeight;

    /// <summary>The ArduChip's SPI side.</summary>
    public ArduChipSpi Spi { get; }
    /// <summary>The OV2640's SCCB (I2C) side.</summary>
    public Ov2640Sccb Sensor { get; }

    /// <summary>Whether an ArduChip is on the bus at all (false: MISO is pulled up, every byte reads 0xFF).</summary>
    public bool ChipPresent { get; set; } = true;
    /// <summary>Whether the OV2640 acknowledges its address.</summary>
    public bool SensorPresent { get; set; } = true;
    /// <summary>Product ID high/low the sensor reports (OV2640: 0x26 and 0x40/0x41/0x42).</summary>
    public byte ProductIdHigh { get; set; } = 0x26;
    public byte ProductIdLow { get; set; } = 0x42;
    /// <summary>Whether the sensor's frame never arrives (a dead sensor clock / cable): the done flag is never set.</summary>
    public bool FramesNeverArrive { get; set; }
    /// <summary>Status reads between start and the done flag (the time a frame takes, in polls).</summary>
    public int StatusPollsPerFrame { get; set; } = 3;
    /// <summary>Whether each burst-read transaction clocks out one dummy byte before the FIFO data (original Mini 2MP).</summary>
    public bool LeadingDummyByte { get; set; } = true;
    /// <summary>Largest SPI transfer the bus driver accepts (Linux spidev bufsiz, 4096 by default).</summary>
    public int MaxTransferBytes { get; set; } = Spidev.DefaultMaxTransferBytes;
    /// <summary>FIFO size (the Mini 2MP has 384 KiB).</summary>
    public int FifoCapacity { get; set; } = 384 * 1024;
    /// <summary>Length of every SPI transaction so far, in order.</summary>
    public List<int> TransferLengths { get; } = new();
    /// <summary>Captures completed.</summary>
    public int FramesCaptured { get; private set; }

    /// <param name="rgb24">The scene: R, G, B bytes per pixel, rows top to bottom, no padding.</param>
    public ArduCamEmulator(byte[] rgb24, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(rgb24);
        if (width <= 0 || height <= 0 || rgb24.Length < width * height * 3)
            throw new ArgumentException($"a {width}x{height} RGB24 scene needs {width * height * 3} bytes, got {rgb24.Length}");
        _scene = rgb24;
        _sceneWidth = width;
        _sceneHeight = height;
        Sensor = new Ov2640Sccb(this);
        Spi = new ArduChipSpi(this);
    }

    /// <summary>The bytes the OV2640 sends for one frame with its current register settings, or null when it sends no frame.</summary>
    public byte[]? SensorFrame()
    {
        if (!SensorSendsFrames) return null;
        var s = Sensor;
        int zmhh = s.Dsp(Ov2640.Zmhh);
        int w = (s.Dsp(Ov2640.Zmow) | (zmhh & 0x03) << 8) * 4;
        int h = (s.Dsp(Ov2640.Zmoh) | ((zmhh >> 2) & 0x01) << 8) * 4;
        if (w == 0 || h == 0) return [];
        byte mode = s.Dsp(Ov2640.ImageMode);
        bool bypass = (s.Dsp(Ov2640.RBypass) & 0x01) != 0;

        if (bypass || (mode & Ov2640.ImageModeJpeg) == 0 && (mode & Ov2640.ImageModeFormatMask) is Ov2640.ImageModeRaw10 or 0x0C)
            return OneBytePerPixel(w, h, bayer: true);
        if ((mode & Ov2640.ImageModeJpeg) != 0) return FakeJpeg(w, h);
        if ((mode & Ov2640.ImageModeY8) != 0) return OneBytePerPixel(w, h, bayer: false);

        var o = new byte[w * h * 2];
        bool rgb = (mode & Ov2640.ImageModeFormatMask) == Ov2640.ImageModeRgb565;
        bool vFirst = (s.Dsp(Ov2640.Ctrl0) & Ov2640.Ctrl0VFirst) != 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x += 2)
            {
                var (r0, g0, b0) = Pixel(x, y, w, h);
                var (r1, g1, b1) = Pixel(x + 1, y, w, h);
                int i = (y * w + x) * 2;
                if (rgb)
                {
                    int p0 = SensorFormat.Rgb565(r0, g0, b0), p1 = SensorFormat.Rgb565(r1, g1, b1);
                    o[i] = (byte)(p0 >> 8); o[i + 1] = (byte)p0; o[i + 2] = (byte)(p1 >> 8); o[i + 3] = (byte)p1;
                }
                else
                {
                    var (u, v) = SensorFormat.PairChroma(r0, g0, b0, r1, g1, b1);
                    o[i] = SensorFormat.Luma(r0, g0, b0); o[i + 1] = vFirst ? v : u;
                    o[i + 2] = SensorFormat.Luma(r1, g1, b1); o[i + 3] = vFirst ? u : v;
                }
            }
        if ((mode & Ov2640.ImageModeLowByteFirst) != 0)
            for (int i = 0; i < o.Length; i += 2) (o[i], o[i + 1]) = (o[i + 1], o[i]);
        return o;
    }

    /// <summary>Whether the sensor is sending frames at all (present, clocked, DVP output not held in reset).</summary>
    bool SensorSendsFrames => SensorPresent && !FramesNeverArrive && (Sensor.Dsp(Ov2640.Reset) & Ov2640.ResetDvp) == 0;

    (int R, int G, int B) Pixel(int x, int y, int w, int h)
    {
        int sx = (int)((long)x * _sceneWidth / w), sy = (int)((long)y * _sceneHeight / h);
        int i = (sy * _sceneWidth + sx) * 3;
        return (_scene[i], _scene[i + 1], _scene[i + 2]);
    }

    byte[] OneBytePerPixel(int w, int h, bool bayer)
    {
        var o = new byte[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var (r, g, b) = Pixel(x, y, w, h);
                o[y * w + x] = (byte)(!bayer ? SensorFormat.Luma(r, g, b) : (y & 1, x & 1) switch { (0, 0) => r, (1, 1) => b, _ => g });
            }
        return o;
    }

    byte[] FakeJpeg(int w, int h)
    {
        int n = Math.Max(64, w * h / 10);
        var o = new byte[n];
        o[0] = 0xFF; o[1] = 0xD8;
        for (int i = 2; i < n - 2; i++) o[i] = (byte)(_scene[i % _scene.Length] & 0x7F);
        o[n - 2] = 0xFF; o[n - 1] = 0xD9;
        return o;
    }

    /// <summary>The emulated ArduChip on SPI.</summary>
    public sealed class ArduChipSpi : SpiDevice
    {
        readonly ArduCamEmulator _cam;
        byte[] _fifo = [];
        byte _test, _frames, _timing;
        bool _done, _capturing;
        int _pollsLeft, _writePointer, _readPointer;

        internal ArduChipSpi(ArduCamEmulator cam)
        {
            _cam = cam;
        }

        public override SpiConnectionSettings ConnectionSettings { get; } =
            new(0, 0) { Mode = SpiMode.Mode0, ClockFrequency = 8_000_000, DataBitLength = 8 };

        public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
        {
            if (writeBuffer.Length != readBuffer.Length) throw new ArgumentException("Parameters 'writeBuffer' and 'readBuffer' must have the same length.");
            Transaction(writeBuffer, readBuffer);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            byte[] discard = new byte[buffer.Length];
            Transaction(buffer, discard);
        }

        public override void WriteByte(byte value) => Write([value]);

        public override void Read(Span<byte> buffer)
        {
            byte[] zeros = new byte[buffer.Length];   // MOSI stays low: the first byte is a read command for register 0x00
            Transaction(zeros, buffer);
        }

        public override byte ReadByte()
        {
            Span<byte> b = stackalloc byte[1];
            Read(b);
            return b[0];
        }

        void Transaction(ReadOnlySpan<byte> tx, Span<byte> rx)
        {
            if (tx.Length == 0) return;
            if (tx.Length > _cam.MaxTransferBytes)
                throw new IOException($"Error 90 performing SPI data transfer ({tx.Length} bytes exceed the spidev buffer of {_cam.MaxTransferBytes}).");
            _cam.TransferLengths.Add(tx.Length);
            if (!_cam.ChipPresent) { rx.Fill(0xFF); return; }
            rx.Clear();
            byte command = tx[0];
            if ((command & ArduChip.WriteFlag) != 0)
            {
                if (tx.Length >= 2) WriteRegister((byte)(command & 0x7F), tx[1]);   // one register per transaction
                return;
            }
            byte address = command;
            if (address == ArduChip.BurstFifoRead)
            {
                int i = 1;
                if (_cam.LeadingDummyByte && i < rx.Length) rx[i++] = 0x00;
                for (; i < rx.Length; i++) rx[i] = FifoByte();
            }
            else if (address == ArduChip.SingleFifoRead)
            {
                if (rx.Length >= 2) rx[1] = FifoByte();
            }
            else if (rx.Length >= 2) rx[1] = ReadRegister(address);
        }

        byte FifoByte()
        {
            if (_fifo.Length == 0) return 0x00;
            byte b = _fifo[_readPointer];          // past the write pointer: whatever the memory still holds
            _readPointer = (_readPointer + 1) % _fifo.Length;
            return b;
        }

        void WriteRegister(byte address, byte value)
        {
            switch (address)
            {
                case ArduChip.Test: _test = value; break;
                case ArduChip.Frames: _frames = value; break;
                case ArduChip.Timing: _timing = value; break;
                case ArduChip.FifoControl:
                    if ((value & ArduChip.FifoClearDone) != 0) _done = false;
                    if ((value & ArduChip.FifoResetReadPointer) != 0) _readPointer = 0;
                    if ((value & ArduChip.FifoResetWritePointer) != 0) _writePointer = 0;
                    if ((value & ArduChip.FifoStartCapture) != 0)
                    {
                        _capturing = true;              // a capture starts writing at the FIFO's start (earlier frames are overwritten)
                        _done = false;
                        _writePointer = _readPointer = 0;
                        _pollsLeft = Math.Max(1, _cam.StatusPollsPerFrame);
                    }
                    break;
                default: break;   // read-only or unused: ignored
            }
        }

        byte ReadRegister(byte address)
        {
            switch (address)
            {
                case ArduChip.Test: return _test;
                case ArduChip.Frames: return _frames;
                case ArduChip.Timing: return _timing;
                case ArduChip.Status:
                    if (_capturing && --_pollsLeft <= 0) TryCompleteCapture();
                    return (byte)((_done ? ArduChip.StatusCaptureDone : 0) | (_cam.SensorSendsFrames ? ArduChip.StatusVsync : 0));
                case ArduChip.FifoSize1: return (byte)_writePointer;
                case ArduChip.FifoSize2: return (byte)(_writePointer >> 8);
                case ArduChip.FifoSize3: return (byte)((_writePointer >> 16) & 0x7F);
                default: return 0x00;
            }
        }

        void TryCompleteCapture()
        {
            int frames = (_frames & 0x07) + 1;
            int capacity = Math.Clamp(_cam.FifoCapacity, 1, ArduChip.FifoSizeMask + 1);
            if (_fifo.Length != capacity) _fifo = new byte[capacity];
            for (int f = 0; f < frames; f++)
            {
                var frame = _cam.SensorFrame();
                if (frame is null) { _pollsLeft = 1; return; }    // no VSYNC from the sensor: keep waiting
                int n = Math.Min(frame.Length, capacity - _writePointer);
                frame.AsSpan(0, n).CopyTo(_fifo.AsSpan(_writePointer));
                _writePointer += n;
            }
            _capturing = false;
            _done = true;
            _cam.FramesCaptured++;
        }
    }

    /// <summary>The emulated OV2640 on SCCB (I2C address 0x30).</summary>
    public sealed class Ov2640Sccb : I2cDevice
    {
        readonly ArduCamEmulator _cam;
        readonly byte[] _dsp = new byte[256], _sensor = new byte[256];
        byte _bank, _pointer;

        internal Ov2640Sccb(ArduCamEmulator cam)
        {
            _cam = cam;
            ResetRegisters();
        }

        public override I2cConnectionSettings ConnectionSettings { get; } = new(1, Ov2640.I2cAddress);

        internal byte Dsp(byte register) => _dsp[register];

        void ResetRegisters()
        {
            Array.Clear(_dsp);
            Array.Clear(_sensor);
            _bank = 0x7F;                       // RA_DLMT default: bit 0 set, the sensor bank
            _dsp[Ov2640.RBypass] = 0x00;
            _dsp[Ov2640.Zmow] = 0x58;           // 352
            _dsp[Ov2640.Zmoh] = 0x48;           // 288
            _dsp[Ov2640.Zmhh] = 0x00;
            _dsp[Ov2640.Ctrl0] = 0x0C;          // YUV422 | YUV_EN
            _dsp[Ov2640.ImageMode] = 0x00;      // YUV422, high byte first
            _dsp[Ov2640.Reset] = 0x00;
            _dsp[0x0A] = 0x00; _dsp[0x0B] = 0x00;   // DSP-bank addresses of the ID registers are other (unused) registers
        }

        bool SensorBank => (_bank & 0x01) != 0;

        void Ack()
        {
            if (!_cam.SensorPresent) throw new IOException("Error 121 performing I2C data transfer."); // no ACK (EREMOTEIO)
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Ack();
            if (buffer.Length == 0) return;
            _pointer = buffer[0];
            if (buffer.Length >= 2) WriteRegister(buffer[0], buffer[1]);   // SCCB: one data byte per write; more are ignored
        }

        public override void WriteByte(byte value) => Write([value]);

        public override void Read(Span<byte> buffer)
        {
            Ack();
            for (int i = 0; i < buffer.Length; i++) buffer[i] = ReadRegister(_pointer);
        }

        public override byte ReadByte()
        {
            Span<byte> b = stackalloc byte[1];
            Read(b);
            return b[0];
        }

        public override void WriteRead(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
        {
            Write(writeBuffer);
            Read(readBuffer);
        }

        void WriteRegister(byte register, byte value)
        {
            if (register == Ov2640.BankSelect) { _bank = value; return; }
            if (SensorBank)
            {
                switch (register)
                {
                    case Ov2640.Pidh: case Ov2640.Pidl: case Ov2640.Midh: case Ov2640.Midl: return;   // read only
                    case Ov2640.Com7 when (value & Ov2640.Com7Reset) != 0: ResetRegisters(); return;
                    default: _sensor[register] = value; return;
                }
            }
            _dsp[register] = value;
        }

        byte ReadRegister(byte register)
        {
            if (register == Ov2640.BankSelect) return _bank;
            if (!SensorBank) return _dsp[register];
            return register switch
            {
                Ov2640.Pidh => _cam.ProductIdHigh,
                Ov2640.Pidl => _cam.ProductIdLow,
                Ov2640.Midh => 0x7F,
                Ov2640.Midl => 0xA2,
                _ => _sensor[register],
            };
        }
    }
}
