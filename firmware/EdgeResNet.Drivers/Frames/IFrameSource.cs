using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Drivers.Frames;

/// <summary>Where camera frames come from: a folder of photos, a V4L2 camera, an SPI camera.</summary>
public interface IFrameSource : IDisposable
{
    /// <summary>What the source is, for log lines ("/dev/video0 640x480 YUYV").</summary>
    string Description { get; }

    /// <summary>The next frame, or null when the source has no more (a folder at its end). The frame's buffer may be reused by the next call.</summary>
    Frame? Capture();

    /// <summary>What the last frame was, where a source can say (a photo's path); else null.</summary>
    string? FrameName => null;
}
