namespace EdgeResNet.Drivers.ArduCam;

/// <summary>
/// ArduChip (the ArduCam Mini's SPI camera controller with its frame FIFO) register map, as published in ArduCam's
/// reference driver headers (ArduCAM.h: ARDUCHIP_TEST1, ARDUCHIP_FRAMES, ARDUCHIP_FIFO, ARDUCHIP_TRIG, FIFO_SIZE1..3,
/// BURST_FIFO_READ, SINGLE_FIFO_READ). SPI mode 0, at most 8 MHz. A transaction starts with a command byte:
/// bit 7 set = write (the next byte is the value), clear = read (the register is clocked out during the next byte).
/// </summary>
public static class ArduChip
{
    /// <summary>Set in the command byte for a register write.</summary>
    public const byte WriteFlag = 0x80;
    /// <summary>Test register: any value written reads back; used to check the SPI link.</summary>
    public const byte Test = 0x00;
    /// <summary>Capture control: bits 2:0 = number of frames to capture minus one.</summary>
    public const byte Frames = 0x01;
    /// <summary>Sensor interface timing (HREF/VSYNC/PCLK polarity).</summary>
    public const byte Timing = 0x03;
    /// <summary>FIFO control: write 1 bits to act.</summary>
    public const byte FifoControl = 0x04;
    public const byte FifoClearDone = 0x01;     // FIFO_CLEAR_MASK: clear the capture-done flag
    public const byte FifoStartCapture = 0x02;  // FIFO_START_MASK
    public const byte FifoResetReadPointer = 0x10;   // FIFO_RDPTR_RST_MASK
    public const byte FifoResetWritePointer = 0x20;  // FIFO_WRPTR_RST_MASK
    /// <summary>Burst FIFO read: after this command byte every clocked byte is the next FIFO byte.</summary>
    public const byte BurstFifoRead = 0x3C;
    /// <summary>Single FIFO read: one FIFO byte is clocked out after the command.</summary>
    public const byte SingleFifoRead = 0x3D;
    /// <summary>ArduChip revision (read only).</summary>
    public const byte Revision = 0x40;
    /// <summary>Trigger source / status (read only): bit 0 VSYNC pin, bit 1 shutter pin, bit 3 capture done.</summary>
    public const byte Status = 0x41;
    public const byte StatusVsync = 0x01;
    public const byte StatusCaptureDone = 0x08;       // CAP_DONE_MASK
    /// <summary>Bytes written to the FIFO: [7:0], [15:8], [22:16] (bits 6:0 of FifoSize3).</summary>
    public const byte FifoSize1 = 0x42, FifoSize2 = 0x43, FifoSize3 = 0x44;
    public const int FifoSizeMask = 0x7FFFFF;
}

/// <summary>
/// OV2640 SCCB (I2C-compatible) registers used here, from the OV2640 datasheet register tables and the register headers of
/// the Linux and ESP32 OV2640 drivers. 7-bit address 0x30 (0x60 write / 0x61 read in 8-bit form). Register 0xFF selects
/// the bank every other address refers to: 0 = DSP registers, 1 = sensor registers.
/// </summary>
public static class Ov2640
{
    public const int I2cAddress = 0x30;
    /// <summary>Bank select (RA_DLMT).</summary>
    public const byte BankSelect = 0xFF;
    public const byte BankDsp = 0x00, BankSensor = 0x01;

    // Sensor bank (0xFF = 1)
    /// <summary>COM7: bit 7 = system reset (self-clearing), bits 6:4 resolution.</summary>
    public const byte Com7 = 0x12;
    public const byte Com7Reset = 0x80;
    /// <summary>Product ID: PIDH = 0x26, PIDL = 0x40/0x41/0x42 (revisions); manufacturer ID MIDH 0x7F, MIDL 0xA2.</summary>
    public const byte Pidh = 0x0A, Pidl = 0x0B, Midh = 0x1C, Midl = 0x1D;
    public const byte ExpectedPidh = 0x26;

    // DSP bank (0xFF = 0)
    /// <summary>R_BYPASS bit 0: 1 = DSP bypassed (raw sensor data out), 0 = DSP used.</summary>
    public const byte RBypass = 0x05;
    /// <summary>ZMOW: output width / 4, bits 7:0.</summary>
    public const byte Zmow = 0x5A;
    /// <summary>ZMOH: output height / 4, bits 7:0.</summary>
    public const byte Zmoh = 0x5B;
    /// <summary>ZMHH: bits 1:0 = (width / 4) bits 9:8, bit 2 = (height / 4) bit 8, bits 7:4 zoom speed.</summary>
    public const byte Zmhh = 0x5C;
    /// <summary>CTRL0: bit 4 VFIRST (1 = YVYU instead of YUYV), bit 3 YUV422, bit 2 YUV_EN, bit 1 RGB_EN, bit 0 RAW_EN.</summary>
    public const byte Ctrl0 = 0xC2;
    public const byte Ctrl0VFirst = 0x10;
    /// <summary>IMAGE_MODE: bit 6 Y8 on DVP, bit 4 JPEG, bits 3:2 DVP format (00 YUV422, 01 RAW10, 10 RGB565), bit 0 low byte first.</summary>
    public const byte ImageMode = 0xDA;
    public const byte ImageModeY8 = 0x40, ImageModeJpeg = 0x10, ImageModeFormatMask = 0x0C;
    public const byte ImageModeYuv422 = 0x00, ImageModeRaw10 = 0x04, ImageModeRgb565 = 0x08, ImageModeLowByteFirst = 0x01;
    /// <summary>RESET: bits hold DSP blocks in reset (bit 2 = DVP output).</summary>
    public const byte Reset = 0xE0;
    public const byte ResetDvp = 0x04;
    /// <summary>Largest output (UXGA).</summary>
    public const int MaxWidth = 1600, MaxHeight = 1200;
}
