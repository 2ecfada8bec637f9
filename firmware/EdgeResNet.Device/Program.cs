using System.CommandLine;
using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using System.Runtime.InteropServices;
using EdgeResNet.Device;
using EdgeResNet.Common;
using EdgeResNet.Common.Signing;
using EdgeResNet.Drivers.Gpio;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Runtime.Flash;

var root = new RootCommand(
    "EdgeResNet board app: classify camera frames with the integer ResNet-50 runtime, weights streamed from flash.\n" +
    "Exit codes: 0 success (also after Ctrl+C), 1 bad command line or config, 2 bad input (missing or corrupt image, unreadable photo), 5 a device missing or failing.");
root.Subcommands.Add(RunCommand());
root.Subcommands.Add(LoaderCommand());
root.Subcommands.Add(SlotsCommand());
return root.Parse(args).Invoke();

static Command RunCommand()
{
    var config = new Option<string?>("--config") { Description = "JSON file with the settings below (snake_case keys: image, camera, led_pin, button_pin, gpio_chip, labels, frames, ram_budget, trust, verify_sections, board); options given here win" };
    var image = new Option<string?>("--image") { Description = $"The flash image: {Specs.ImageForms}" };
    var camera = new Option<string?>("--camera") { Description = $"The frame source: {Specs.CameraForms}. FORMAT: Rgb24, Bgr24, Rgb565, Yuyv, Grey8" };
    var led = new Option<int?>("--led") { Description = "GPIO pin of the status LED (lit while a frame is classified)" };
    var button = new Option<int?>("--button") { Description = "GPIO pin of a button to ground (internal pull-up): classify one frame per press" };
    var board = new Option<string?>("--board")
    {
        Description = $"The board, by name ({string.Join(", ", BoardProfile.Names)}): fills in the buses a device string leaves out (spi:, slots:spi:, arducam:) " +
            "and refuses an LED or button on a pin those buses use",
    };
    var gpioChip = new Option<int?>("--gpio-chip") { Description = "Use /dev/gpiochipN through libgpiod instead of the board's default GPIO driver" };
    var labels = new Option<string?>("--labels") { Description = "labels.json of the weights package, to print class names" };
    var frames = new Option<int?>("--frames") { Description = "Stop after N frames (default: until the source ends or Ctrl+C)" };
    var ramBudget = new Option<long?>("--ram-budget")
    {
        Description = $"Bytes of RAM the runtime may plan for (default {EdgeResNet.Runtime.Engine.ExecutionPlan.DefaultRamBudgetBytes:N0}); an image whose smallest plan needs more is refused",
    };
    var trust = TrustOption();
    var verify = new Option<bool>("--verify-sections") { Description = "Check every section CRC of the image before the first frame (reads it all once)" };
    var logitsOut = new Option<string?>("--logits-out") { Description = "Also write each frame's logits here (one line per frame: source, then the integer logits)" };
    var cmd = new Command("run", "Classify frames: prints the label, probability and latency of each")
    {
        config, image, camera, led, button, gpioChip, labels, frames, ramBudget, trust, verify, logitsOut, board,
    };
    cmd.SetAction(pr => ExitCodes.Guard(() =>
    {
        if (pr.GetValue(frames) is int f && f < 1) throw new UsageException($"--frames {f}: give 1 or more (leave it out to run until the source ends or Ctrl+C)");
        foreach (var (name, pin) in new[] { ("--led", pr.GetValue(led)), ("--button", pr.GetValue(button)), ("--gpio-chip", pr.GetValue(gpioChip)) })
            if (pin is int p && p < 0) throw new UsageException($"{name} {p}: a GPIO pin or chip number is 0 or more (leave the option out for none)");
        var c = pr.GetValue(config) is string path ? DeviceConfig.Load(path) : new DeviceConfig();
        c = c with
        {
            Image = pr.GetValue(image) ?? c.Image,
            Camera = pr.GetValue(camera) ?? c.Camera,
            LedPin = pr.GetValue(led) ?? c.LedPin,
            ButtonPin = pr.GetValue(button) ?? c.ButtonPin,
            GpioChip = pr.GetValue(gpioChip) ?? c.GpioChip,
            Labels = pr.GetValue(labels) ?? c.Labels,
            Frames = pr.GetValue(frames) ?? c.Frames,
            RamBudget = pr.GetValue(ramBudget) ?? c.RamBudget,
            Trust = pr.GetValue(trust) is { Length: > 0 } keys ? keys : c.Trust,
            VerifySections = pr.GetValue(verify) || c.VerifySections,
            Board = pr.GetValue(board) ?? c.Board,
        };
        if (c.Board is string boardName)
        {
            var profile = BoardProfile.Get(boardName);
            c = c with { Image = profile.Image(c.Image), Camera = profile.Camera(c.Camera) };
            bool flashOnSpi = c.Image!.StartsWith("spi:") || c.Image.StartsWith("slots:spi:"), arducam = c.Camera!.StartsWith("arducam:");
            profile.CheckPin(c.LedPin, "--led", flashOnSpi, arducam);
            profile.CheckPin(c.ButtonPin, "--button", flashOnSpi, arducam);
        }
        return Run(c, pr.GetValue(logitsOut));
    }));
    return cmd;
}

static Option<string[]> TrustOption() => new("--trust")
{
    Description = "A public key file (KEY.pub from `edgeresnet keys new`; repeat for several): only images signed by one of them are written and booted. " +
        "Without any, every valid image is taken and the app warns on each start",
    AllowMultipleArgumentsPerToken = false,
};

/// <summary>Loads the trusted keys and says on every start what the board will accept.</summary>
static IReadOnlyList<TrustedKey> LoadTrust(string[] paths, string who)
{
    var keys = TrustedKey.LoadAll(paths);
    Console.WriteLine(keys.Count > 0
        ? $"{who}: takes only images signed by key {string.Join(", key ", keys.Select(k => k.KeyIdHex))}"
        : $"{who}: WARNING: no trusted key (--trust KEY.pub): any valid image is accepted, signed or not; whoever can write this board's flash decides what it runs");
    return keys;
}

static Command LoaderCommand()
{
    var serial = new Option<string>("--serial") { Description = "Serial port the host's `edgeresnet flash --serial` talks to (e.g. /dev/ttyGS0, /dev/ttyAMA0)", Required = true };
    var storage = new Option<string>("--storage") { Description = $"The flash holding the A/B image slots: {Specs.StorageForms}", Required = true };
    var baud = new Option<int>("--baud") { Description = "Baud rate", DefaultValueFactory = _ => 921_600 };
    var once = new Option<bool>("--once") { Description = "Exit after the first host session instead of waiting for the next one" };
    var trust = TrustOption();
    var cmd = new Command("loader",
        "Loader mode: receive a flash image over the serial port into the inactive A/B slot; the new image boots only once it is complete and verified. " +
        "Waits for the host again after each session; Ctrl+C stops.")
    {
        serial, storage, baud, once, trust,
    };
    cmd.SetAction(pr => ExitCodes.Guard(() =>
    {
        var keys = LoadTrust(pr.GetValue(trust) ?? [], "loader");
        SerialLink.CheckExists(pr.GetValue(serial)!); // a mistyped port must not leave a new chip file behind
        using var opened = Specs.OpenStorage(pr.GetValue(storage)!, createEmulated: true);
        var store = new SlotStore(opened.Flash, verifySections: true, keys);
        Console.WriteLine($"loader: {opened.Description}, two slots of {store.SlotSize:N0} bytes (images up to {store.MaxImageLength:N0})");
        foreach (var line in store.Describe()) Console.WriteLine("  " + line);
        var cancel = new CancellationTokenSource(); // not disposed: a late signal may still touch it
        Stream? link = null;
        void Stop() { cancel.Cancel(); link?.Dispose(); }
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; Stop(); };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; Stop(); });
        string port = pr.GetValue(serial)!;
        while (!cancel.IsCancellationRequested)
        {
            try { link = SerialLink.Open(port, pr.GetValue(baud), Timeout.InfiniteTimeSpan); }
            catch (DeviceException) when (link != null)
            {
                // The port went away with the host (a USB adapter unplugged, a pty pair closed): wait for it to return.
                Thread.Sleep(200);
                continue;
            }
            if (cancel.IsCancellationRequested) { link.Dispose(); break; } // the signal came while the port was opening
            Console.WriteLine($"loader: listening on {port}");
            try { new LoaderServer(store, link) { Log = line => Console.WriteLine("loader: " + line), IdleTimeout = TimeSpan.FromSeconds(60) }.Run(); }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or TimeoutException) { }
            link.Dispose();
            Console.WriteLine("loader: host session ended");
            foreach (var line in store.Describe()) Console.WriteLine("  " + line);
            if (pr.GetValue(once)) break;
        }
        return 0;
    }));
    return cmd;
}

static Command SlotsCommand()
{
    var storage = new Option<string>("--storage") { Description = $"The flash holding the A/B image slots: {Specs.StorageForms}", Required = true };
    var trust = TrustOption();
    var cmd = new Command("slots", "Show the A/B image slots: generation, size, CRC, signer, and which one boots (exit 2 if none can)") { storage, trust };
    cmd.SetAction(pr => ExitCodes.Guard(() =>
    {
        var keys = LoadTrust(pr.GetValue(trust) ?? [], "slots");
        using var opened = Specs.OpenStorage(pr.GetValue(storage)!);
        var store = new SlotStore(opened.Flash, verifySections: true, keys);
        Console.WriteLine(opened.Description);
        foreach (var line in store.Describe()) Console.WriteLine("  " + line);
        var boot = store.Boot();
        Console.WriteLine($"boots slot {boot.Slot}, generation {boot.Generation}");
        return 0;
    }));
    return cmd;
}

static int Run(DeviceConfig c, string? logitsPath)
{
    if (c.Image == null) throw new UsageException($"no flash image: give --image ({Specs.ImageForms}) or \"image\" in the config");
    if (c.Camera == null) throw new UsageException($"no frame source: give --camera ({Specs.CameraForms}) or \"camera\" in the config");
    if (c.Frames < 0) throw new UsageException("--frames must not be negative");
    if (c.RamBudget < 1) throw new UsageException($"--ram-budget (ram_budget) {c.RamBudget}: give a positive number of bytes");
    string[]? names = c.Labels != null ? ClassLabels.Load(c.Labels) : null;
    var trust = LoadTrust(c.Trust, "image");

    using var opened = Specs.OpenImage(c.Image, trust);
    // Header, layer table and BN tables are checked now; the weight sections either now (--verify-sections,
    // one extra pass over the flash) or as the first frame streams them (no extra reads).
    StreamingVerifier? verifier = null;
    var flashImage = opened.Image
        ?? (c.VerifySections ? FlashImage.Open(opened.Flash, verifySections: true)
        : FlashImage.OpenVerifyingWhileStreaming(opened.Flash, out verifier));
    Console.WriteLine($"image: {opened.Description}: {flashImage.Model.Layers.Length} layers, {flashImage.Model.WeightWidths} weights, {flashImage.Model.Scheme} batch norm");
    // Slots checked the signature while choosing the boot slot; any other image is checked here (one read of the image).
    if (trust.Count > 0 && opened.Image == null)
    {
        var signature = ImageSigning.Verify(opened.Flash, flashImage.ImageSize, trust);
        Console.WriteLine($"image: signed by trusted key {signature.KeyId}, security counter {signature.SecurityCounter}");
    }
    else if (trust.Count == 0 && ImageSigning.ReadBlock(opened.Flash, flashImage.ImageSize, out _) is { } block)
        Console.WriteLine($"image: carries a signature by key {block.KeyIdHex} (security counter {block.SecurityCounter}), not checked without --trust");
    // Planned before any device opens: an image that cannot run in the budget is refused first.
    var plan = new EdgeResNet.Runtime.Engine.ExecutionPlan(flashImage.Model, ramBudgetBytes: c.RamBudget);
    using var source = Specs.OpenCamera(c.Camera);
    Console.WriteLine($"camera: {source.Description}");
    using var gpio = c.LedPin >= 0 || c.ButtonPin >= 0 ? OpenGpio(c.GpioChip) : null;
    using var pins = gpio != null ? new StatusPins(gpio, c.LedPin, c.ButtonPin) : null;
    if (pins is { HasButton: true }) Console.WriteLine($"waiting for the button on GPIO {c.ButtonPin} before each frame");

    var classifier = new FrameClassifier(flashImage, source, pins, opened.BusBytesRead, plan);
    Console.WriteLine($"runtime RAM {classifier.Engine.RamBytes:N0} B (budget {c.RamBudget:N0} B), conv kernel: {classifier.Engine.ConvKernel}; Ctrl+C stops after the current frame");
    var cancel = new CancellationTokenSource(); // not disposed: a second Ctrl+C during teardown may still touch it
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cancel.Cancel(); });

    using var logits = logitsPath != null ? new StreamWriter(logitsPath + ".tmp") : null;
    int n = classifier.Run(c.Frames, cancel.Token, r =>
    {
        string name = names != null && r.Top5[0] < names.Length ? names[r.Top5[0]] : $"class {r.Top5[0]}";
        Console.WriteLine($"frame {r.Index + 1} {Path.GetFileName(r.Source)}: {name} ({r.Top5[0]}) {r.Top1Probability:P1}; top-5 {string.Join(' ', r.Top5)}; " +
            $"preprocess {r.PreprocessMs:F1} ms, inference {r.InferenceMs:F0} ms" + (opened.BusBytesRead != null ? $", {r.BusBytes:N0} B over SPI" : ""));
        logits?.WriteLine($"{Path.GetFileName(r.Source)}\t{string.Join(' ', r.Logits)}");
        if (r.Index == 0 && classifier.Preprocessor is { } pre)
            Console.WriteLine($"preprocessing RAM {pre.RamBytes:N0} B for {pre.FrameWidth}x{pre.FrameHeight} frames (plus the source's frame buffer)");
        if (r.Index == 0 && verifier != null)
            Console.WriteLine($"image integrity: {verifier.Verified} of {verifier.Sections} weight sections matched their CRCs while the first frame streamed them");
    });
    if (logits != null)
    {
        logits.Close();
        File.Move(logitsPath + ".tmp", logitsPath!, overwrite: true);
    }
    long peak = System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;
    Console.WriteLine((cancel.IsCancellationRequested ? $"stopped after {n} frame(s)" : $"done: {n} frame(s)") + $"; process peak resident memory {peak / 1048576.0:F1} MiB (.NET runtime included)");
    return 0;
}

static GpioController OpenGpio(int chip)
{
    try { return chip >= 0 ? new GpioController(new LibGpiodDriver(chip)) : new GpioController(); }
    catch (Exception e) when (e is PlatformNotSupportedException or IOException or UnauthorizedAccessException or InvalidOperationException or DllNotFoundException)
    {
        throw new DeviceException($"no usable GPIO controller{(chip >= 0 ? $" at /dev/gpiochip{chip}" : "")}: {e.Message}. Check the board has GPIO (and libgpiod), or leave out --led/--button", e);
    }
}
