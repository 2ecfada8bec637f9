using EdgeResNet.Common;
using System.CommandLine;
using System.Diagnostics;
using EdgeResNet.Flashing.Loader;
using EdgeResNet.Flashing.SpiNor;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;
using EdgeResNet.Tools.Evaluation;
using Spectre.Console;

namespace EdgeResNet.Cli;

/// <summary>The device side from the host: the camera-frame preprocessing check (and flashing).</summary>
public static class DeviceCommands
{
    public static IEnumerable<Command> All() => [CheckPreprocessing(), Flash()];

    internal static Option<PixelFormat> FormatOption(PixelFormat fallback) => new("--format")
    {
        Description = "Sensor pixel format the photos are turned into first: Rgb24 (lossless), Bgr24, Rgb565, Yuyv, Grey8",
        DefaultValueFactory = _ => fallback,
    };

    static Command CheckPreprocessing()
    {
        var model = new Option<string>("--model") { Description = "A flash image (.img): its input format is the target", Required = true };
        var images = CommandSupport.ImagesOption();
        var limit = new Option<int?>("--limit") { Description = "Only the first N photos" };
        var format = FormatOption(PixelFormat.Rgb24);
        var threads = CommandSupport.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON here" };
        var cmd = new Command("check-preprocessing",
            "The device's integer preprocessing of camera frames against the tools' float preprocessing, on every photo: " +
            "largest difference in quantised input units, and how many photos keep the runtime's top-1. Exit 4 if agreement is below 99.5 %.")
        {
            model, images, limit, format, threads, json,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            CommandSupport.CheckOutputs(pr.GetValue(json));
            var set = Dataset.Load(CommandSupport.ImagesDir(pr.GetValue(images)), Split.All, pr.GetValue(limit));
            if (set.Count == 0) throw new UsageException("no images selected; check --images and --limit");
            int t = pr.GetValue(threads);
            if (t < 1) throw new UsageException("--threads must be at least 1");
            PreprocessingReport r = null!;
            AnsiConsole.Progress().Columns(CommandSupport.ProgressColumns()).Start(ctx =>
            {
                var task = ctx.AddTask($"{pr.GetValue(format)} frames: {set.Count} photos", maxValue: set.Count);
                r = PreprocessingComparison.Run(pr.GetValue(model)!, set, pr.GetValue(format), t, done => task.Value = done);
            });
            foreach (var e in r.Errors) Console.Error.WriteLine($"error: {e}");
            Console.WriteLine($"engine: {r.Engine}");
            Console.WriteLine($"{r.Format} frames, {r.Images} photos, image {r.Model}: largest |difference| {r.MaxAbsDifference} quantised input unit(s); " +
                $"{r.ImagesWithDifference} photo(s) with any difference ({r.ValuesDiffering:N0} of {r.Values:N0} values); " +
                $"top-1 unchanged on {r.Top1Same}/{r.Images} = {r.Top1Agreement:P2}; {r.Seconds:F1} s on {r.Threads} thread(s)");
            if (r.SensorFormatTop1Agreement is double sensor)
                Console.WriteLine($"what {r.Format} itself costs: top-1 on the frame equals top-1 on the original photo for {sensor:P2} of photos");
            if (pr.GetValue(json) is string j) CommandSupport.WriteJsonAtomically(j, r);
            if (r.Errors.Count > 0) return ExitCodes.BadInput;
            return r.Top1Agreement >= 0.995 ? ExitCodes.Ok : ExitCodes.BelowTarget;
        }));
        return cmd;
    }

    static Command Flash()
    {
        var image = new Option<string>("--image") { Description = "The flash image to write (.img); it is validated first (header, table, every CRC)", Required = true };
        var spi = new Option<string?>("--spi")
        {
            Description = "Write straight to a SPI NOR chip: BUS,CS for /dev/spidevBUS.CS (on the board), or a USB adapter on a PC: ft232h[:N] (CS on D3) or ft4222[:N] (CS on SS0O), N counting adapters from 0",
        };
        var emulation = new Option<string?>("--spi-emulation") { Description = "Instead of a real bus, an emulated W25Q512JV whose contents live in this file (created erased)" };
        var offset = new Option<long>("--offset") { Description = $"Byte offset in the chip, a multiple of {NorGeometry.SectorSize} (--spi / --spi-emulation)", DefaultValueFactory = _ => 0 };
        var serial = new Option<string?>("--serial") { Description = "Send the image to the board app's loader (edgeresnet-device loader) over this serial port; it writes the inactive A/B slot and commits only a verified image" };
        var baud = new Option<int>("--baud") { Description = "Serial baud rate", DefaultValueFactory = _ => 921_600 };
        var cmd = new Command("flash",
            "Write a flash image to a board's external flash and verify it: erases only what differs, programs, reads back; " +
            "a rerun resumes (sectors already right are skipped). Over --serial the board keeps its previous image bootable until the new one is complete.")
        {
            image, spi, emulation, offset, serial, baud,
        };
        cmd.SetAction(pr => ExitCodes.Guard(() =>
        {
            string path = pr.GetValue(image)!;
            int targets = (pr.GetValue(spi) != null ? 1 : 0) + (pr.GetValue(emulation) != null ? 1 : 0) + (pr.GetValue(serial) != null ? 1 : 0);
            if (targets != 1) throw new UsageException("give exactly one target: --spi BUS,CS (or ft232h / ft4222), --spi-emulation CHIPFILE or --serial PORT");
            byte[] bytes = File.Exists(path) ? File.ReadAllBytes(path) : throw new FileNotFoundException($"flash image not found: {path}", path);
            var model = FlashImage.Open(new MemoryFlash(bytes), verifySections: true).Model; // refuse a damaged image before touching the board
            Console.WriteLine($"{path}: {bytes.Length:N0} bytes, {model.Layers.Length} layers, {QuantCommands.WidthsSummary(model)} weights, all CRCs valid");
            return pr.GetValue(serial) is string port
                ? FlashSerial(bytes, port, pr.GetValue(baud))
                : FlashSpi(bytes, pr.GetValue(spi), pr.GetValue(emulation), pr.GetValue(offset));
        }));
        return cmd;
    }

    static int FlashSpi(byte[] image, string? spi, string? emulation, long offset)
    {
        SectorWriter.CheckOffset(offset);
        using var nor = spi != null ? OpenSpi(spi) : SpiNorDevices.OpenEmulated(emulation!, create: true);
        Console.WriteLine($"target: {nor.Description}, offset {offset:N0}");
        var sw = Stopwatch.StartNew();
        SectorCounts counts = default;
        AnsiConsole.Progress().Columns([.. CommandSupport.ProgressColumns(), new TransferSpeedColumn()]).Start(ctx =>
        {
            var task = ctx.AddTask("write + verify", maxValue: image.Length);
            counts = SectorWriter.WriteImage(nor.Flash, offset, image, new Progress<WriteProgress>(p => task.Value = p.BytesDone));
            task.Value = image.Length;
        });
        double s = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"flashed and verified {image.Length:N0} bytes in {s:F1} s ({image.Length / s / 1e6:F2} MB/s): {counts}; the image reads back valid from the chip");
        return ExitCodes.Ok;
    }

    static OpenedNor OpenSpi(string spec)
    {
        if (UsbSpiAdapters.IsAdapter(spec)) return UsbSpiAdapters.Open(spec);
        var (bus, cs) = EdgeResNet.Common.DeviceStrings.ParseSpi(spec);
        return SpiNorDevices.OpenSpi(bus, cs);
    }

    static int FlashSerial(byte[] image, string port, int baud)
    {
        using var link = SerialLink.Open(port, baud);
        var client = new LoaderClient(link);
        var hello = client.Hello();
        Console.WriteLine($"board loader on {port}: {hello.Capacity:N0}-byte flash, slots of {hello.SlotSize:N0} bytes, " +
            (hello.BootSlot is char b ? $"boots slot {b} (generation {hello.BootGeneration})" : "no bootable image yet"));
        LoaderResult result = null!;
        AnsiConsole.Progress().Columns([.. CommandSupport.ProgressColumns(), new TransferSpeedColumn()]).Start(ctx =>
        {
            var task = ctx.AddTask("send + verify", maxValue: image.Length);
            result = client.Flash(image, new Progress<LoaderProgress>(p => task.Value = p.BytesDone));
            task.Value = image.Length;
        });
        Console.WriteLine($"slot {result.Slot} committed as generation {result.Generation}: {result.ImageLength:N0} bytes, {result.BytesSent:N0} sent " +
            $"({result.BlocksWritten} blocks written, {result.BlocksSkipped} already right), {result.Retries} retries, " +
            $"{result.Elapsed.TotalSeconds:F1} s ({result.BytesPerSecond / 1e6:F2} MB/s); the board boots it from now on");
        return ExitCodes.Ok;
    }
}
