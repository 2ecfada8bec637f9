using EdgeResNet.Common;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeResNet.Device;

/// <summary>
/// What the board app runs with. A JSON file (--config) gives defaults; command-line options
/// override them. Keys are snake_case: {"image": "slots:spi:0,0", "camera": "v4l2:/dev/video0,640x480,Yuyv",
/// "led_pin": 17, "button_pin": 27, "labels": "labels.json", "frames": 0}.
/// </summary>
public sealed record DeviceConfig
{
    /// <summary>Where the flash image is: PATH.img | file:PATH | spi:BUS,CS[@OFFSET] | emulated-nor:PATH[@OFFSET] | slots:STORAGE.</summary>
    public string? Image { get; init; }
    /// <summary>Frame source: folder:DIR[,FORMAT][,loop] | v4l2:DEVICE[,WxH[,FORMAT]] | arducam:SPIBUS,CS,I2CBUS[,WxH[,FORMAT]].</summary>
    public string? Camera { get; init; }
    public int LedPin { get; init; } = -1;
    public int ButtonPin { get; init; } = -1;
    /// <summary>GPIO chip number for the Linux character-device driver (gpiochip N); -1 = the board's default driver.</summary>
    public int GpioChip { get; init; } = -1;
    /// <summary>labels.json of the weights package (index -> class name); without it, class indices are printed.</summary>
    public string? Labels { get; init; }
    /// <summary>Stop after this many frames (0 = until the source ends or Ctrl+C).</summary>
    public int Frames { get; init; }
    /// <summary>Public key files (KEY.pub) whose signed images this board runs; none: any valid image, with a warning.</summary>
    public string[] Trust { get; init; } = [];
    /// <summary>Bytes of RAM the runtime may plan for (its arena and buffers; the camera's frame buffer is the source's).</summary>
    public long RamBudget { get; init; } = EdgeResNet.Runtime.Engine.ExecutionPlan.DefaultRamBudgetBytes;
    /// <summary>Verify every section CRC of the image before the first frame (reads the whole image once).</summary>
    public bool VerifySections { get; init; }
    /// <summary>A board name (<see cref="BoardProfile.Names"/>) whose buses fill in spi:, slots:spi: and arducam:.</summary>
    public string? Board { get; init; }

    public static DeviceConfig Load(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"config file not found: {path}");
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), DeviceConfigJson.Default.DeviceConfig)
                ?? throw new UsageException($"{path}: the config is empty (null)");
        }
        catch (JsonException e)
        {
            throw new UsageException($"{path}: not a valid config ({e.Message}); keys: image, camera, led_pin, button_pin, gpio_chip, labels, frames, ram_budget, trust, verify_sections, board");
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(DeviceConfig))]
partial class DeviceConfigJson : JsonSerializerContext;
