using EdgeResNet.Common;
using System.IO.Ports;

namespace EdgeResNet.Flashing.Loader;

/// <summary>Opens the serial port the loader talks over (a USB-serial adapter, a board UART, or a pseudo-terminal in tests).</summary>
public static class SerialLink
{
    /// <summary>
    /// Opens <paramref name="portName"/> (e.g. /dev/ttyUSB0, /dev/pts/3, COM3) at 8N1 without flow
    /// control, with a read timeout (the client needs one), and returns its stream. Disposing the
    /// stream closes the port.
    /// </summary>
    public static Stream Open(string portName, int baud = 115200, TimeSpan? readTimeout = null)
    {
        CheckExists(portName);
        var port = new SerialPort(portName, baud, Parity.None, 8, StopBits.One)
        {
            Handshake = Handshake.None,
            ReadTimeout = (int)(readTimeout ?? TimeSpan.FromSeconds(2)).TotalMilliseconds,
            WriteTimeout = 10_000,
        };
        try
        {
            port.Open();
        }
        catch (UnauthorizedAccessException e)
        {
            throw new DeviceException($"serial port {portName}: permission denied (on Linux add yourself to the dialout group) or the port is in use", e);
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
        {
            throw new DeviceException($"serial port {portName} cannot be opened: {e.Message} (ports found: {Available()})", e);
        }
        return port.BaseStream;
    }

    /// <summary>
    /// Throws <see cref="DeviceException"/> naming the ports found when <paramref name="portName"/> does not exist
    /// (SerialPort on Linux reports a missing device as a bare IOException). The loader checks this before it touches its storage.
    /// </summary>
    public static void CheckExists(string portName)
    {
        if (!OperatingSystem.IsWindows() && !File.Exists(portName))
            throw new DeviceException($"serial port {portName} does not exist (ports found: {Available()})");
    }

    static string Available()
    {
        var names = SerialPort.GetPortNames();
        return names.Length == 0 ? "none" : string.Join(", ", names);
    }
}
