using System.Device.Gpio;

namespace EdgeResNet.Drivers.Emulation;

/// <summary>
/// A simulated GPIO controller chip for tests and for running the board app without a board:
/// pins hold a mode and a level, outputs record every level written, inputs with pull-up rest
/// high, and <see cref="Press"/> drives an input low and high again, raising the edges a real
/// button would (callbacks and WaitForEvent). Emulation, not hardware.
/// </summary>
public sealed class SimulatedGpioDriver(int pinCount = 28) : GpioDriver
{
    readonly object _gate = new();
    readonly Dictionary<int, PinMode> _modes = [];
    readonly Dictionary<int, PinValue> _levels = [];
    readonly Dictionary<int, List<(PinEventTypes Types, PinChangeEventHandler Handler)>> _callbacks = [];
    readonly Dictionary<int, Queue<PinEventTypes>> _pending = [];

    /// <summary>Every (pin, level) written to an output, in order.</summary>
    public List<(int Pin, PinValue Value)> Writes { get; } = [];

    protected override int PinCount => pinCount;

    protected override void OpenPin(int pinNumber)
    {
        lock (_gate) { _modes[pinNumber] = PinMode.Input; _levels[pinNumber] = PinValue.Low; _pending[pinNumber] = new(); }
    }

    protected override void ClosePin(int pinNumber)
    {
        lock (_gate) { _modes.Remove(pinNumber); _callbacks.Remove(pinNumber); _pending.Remove(pinNumber); }
    }

    protected override void SetPinMode(int pinNumber, PinMode mode)
    {
        lock (_gate)
        {
            _modes[pinNumber] = mode;
            if (mode == PinMode.InputPullUp) _levels[pinNumber] = PinValue.High;
            if (mode == PinMode.InputPullDown) _levels[pinNumber] = PinValue.Low;
        }
    }

    protected override PinMode GetPinMode(int pinNumber) { lock (_gate) return _modes[pinNumber]; }

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => pinNumber >= 0 && pinNumber < pinCount;

    protected override PinValue Read(int pinNumber) { lock (_gate) return _levels[pinNumber]; }

    protected override void Write(int pinNumber, PinValue value)
    {
        lock (_gate)
        {
            if (_modes[pinNumber] != PinMode.Output) throw new InvalidOperationException($"GPIO {pinNumber} is not an output");
            _levels[pinNumber] = value;
            Writes.Add((pinNumber, value));
        }
    }

    /// <summary>The level a pin shows now (an output's last write).</summary>
    public PinValue Level(int pin) { lock (_gate) return _levels[pin]; }

    /// <summary>A button press on an input: low, then high again (falling then rising edge).</summary>
    public void Press(int pin)
    {
        Drive(pin, PinValue.Low);
        Drive(pin, PinValue.High);
    }

    /// <summary>The outside world drives input <paramref name="pin"/> to <paramref name="level"/> (a button's contacts, bouncing or not); an edge raises the pin's events.</summary>
    public void Drive(int pin, PinValue level)
    {
        List<(PinEventTypes, PinChangeEventHandler)> handlers;
        PinEventTypes edge;
        lock (_gate)
        {
            if (!_modes.ContainsKey(pin)) throw new InvalidOperationException($"GPIO {pin} is not open");
            if (_levels[pin] == level) return;
            _levels[pin] = level;
            edge = level == PinValue.Low ? PinEventTypes.Falling : PinEventTypes.Rising;
            _pending[pin].Enqueue(edge);
            Monitor.PulseAll(_gate);
            handlers = _callbacks.TryGetValue(pin, out var l) ? [.. l] : [];
        }
        foreach (var (types, handler) in handlers)
            if ((types & edge) != 0) handler(this, new PinValueChangedEventArgs(edge, pin));
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken)
    {
        using var wake = cancellationToken.Register(() => { lock (_gate) Monitor.PulseAll(_gate); });
        lock (_gate)
        {
            while (true)
            {
                var queue = _pending[pinNumber];
                while (queue.Count > 0)
                {
                    var e = queue.Dequeue();
                    if ((e & eventTypes) != 0) return new WaitForEventResult { EventTypes = e, TimedOut = false };
                }
                if (cancellationToken.IsCancellationRequested) return new WaitForEventResult { EventTypes = PinEventTypes.None, TimedOut = true };
                Monitor.Wait(_gate);
            }
        }
    }

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback)
    {
        lock (_gate)
        {
            if (!_callbacks.TryGetValue(pinNumber, out var list)) _callbacks[pinNumber] = list = [];
            list.Add((eventTypes, callback));
        }
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback)
    {
        lock (_gate) _callbacks.GetValueOrDefault(pinNumber)?.RemoveAll(c => c.Handler == callback);
    }
}
