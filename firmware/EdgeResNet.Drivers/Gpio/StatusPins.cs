using EdgeResNet.Common;
using System.Device.Gpio;
using Iot.Device.Button;

namespace EdgeResNet.Drivers.Gpio;

/// <summary>
/// The board app's two pins: a status LED (output, high while a frame is being classified) and a
/// button to ground (internal pull-up), read by Iot.Device.Button's <see cref="GpioButton"/>: it debounces
/// (edges within <see cref="Debounce"/> of a release are contact bounce) and raises one Press per press.
/// Either may be absent (-1). Pin numbers are the controller's logical numbers (BCM numbering on a Raspberry Pi).
/// </summary>
public sealed class StatusPins : IDisposable
{
    /// <summary>How long after a release edges count as bounce, not as a new press.</summary>
    public static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(30);

    readonly GpioController _gpio;
    readonly int _led, _button;
    GpioButton? _buttonDevice;
    // At most one press waits to be served: presses while a frame is classified ask for one more frame, not a queue.
    readonly SemaphoreSlim _pressed = new(0, 1);

    public StatusPins(GpioController gpio, int ledPin, int buttonPin)
    {
        _gpio = gpio;
        _led = ledPin;
        _button = buttonPin;
        if (ledPin >= 0 && ledPin == buttonPin) throw new DeviceException($"the LED and the button are both on GPIO {ledPin}; give them different pins");
        if (ledPin >= 0) Open(ledPin, PinMode.Output, "status LED", () => _gpio.OpenPin(ledPin, PinMode.Output));
        if (buttonPin >= 0)
        {
            Open(buttonPin, PinMode.InputPullUp, "button", () => _buttonDevice = new GpioButton(buttonPin, isPullUp: true, hasExternalResistor: false, _gpio, shouldDispose: false, Debounce));
            _buttonDevice!.Press += (_, _) =>
            {
                try { _pressed.Release(); }
                catch (SemaphoreFullException) { } // one press is already waiting
            };
        }
        if (ledPin >= 0) _gpio.Write(ledPin, PinValue.Low);
    }

    void Open(int pin, PinMode mode, string what, Action open)
    {
        int count = _gpio.PinCount;
        if (pin >= count) throw new DeviceException($"{what} pin GPIO {pin} does not exist: this GPIO controller has pins 0..{count - 1}");
        try
        {
            if (!_gpio.IsPinModeSupported(pin, mode)) throw new DeviceException($"{what} pin GPIO {pin} does not support {mode}; choose another pin");
            open();
        }
        catch (DeviceException) { throw; }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw new DeviceException($"cannot open {what} pin GPIO {pin}: {e.Message} (is it in use, or does the user lack access to /dev/gpiochip*?)", e);
        }
    }

    public bool HasButton => _button >= 0;

    /// <summary>Lights the LED until the returned scope is disposed.</summary>
    public Busy LightWhileBusy()
    {
        if (_led >= 0) _gpio.Write(_led, PinValue.High);
        return new Busy(this);
    }

    public readonly struct Busy(StatusPins pins) : IDisposable
    {
        public void Dispose()
        {
            if (pins._led >= 0) pins._gpio.Write(pins._led, PinValue.Low);
        }
    }

    /// <summary>Blocks until the button has been pressed and released (true) or the token is cancelled (false).</summary>
    public bool WaitForPress(CancellationToken cancel)
    {
        if (_buttonDevice == null) throw new InvalidOperationException("no button pin configured");
        try
        {
            _pressed.Wait(cancel);
            return true;
        }
        catch (OperationCanceledException) { return false; }
    }

    public void Dispose()
    {
        if (_led >= 0 && _gpio.IsPinOpen(_led)) { _gpio.Write(_led, PinValue.Low); _gpio.ClosePin(_led); }
        _buttonDevice?.Dispose(); // closes its pin, leaves the controller open
        _pressed.Dispose();
    }
}
