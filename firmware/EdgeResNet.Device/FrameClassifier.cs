using System.Diagnostics;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Drivers.Gpio;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Device;

/// <summary>One classified frame: top-5 class indices, top-1 probability, timings and bus traffic.</summary>
public sealed record FrameResult(int Index, string Source, int[] Top5, double Top1Probability, double PreprocessMs, double InferenceMs, long BusBytes, int[] Logits);

/// <summary>
/// The board app's loop: capture a frame (on a button press if there is a button), run the engine
/// with the status LED lit, the preprocessor making its input rows in integers as the engine asks
/// for them (a plan that streams its input never holds the whole input), report.
/// One engine, one preprocessor per frame size: nothing is allocated per frame but the report.
/// The engine runs <paramref name="plan"/> (default: the plan for the default RAM budget).
/// </summary>
public sealed class FrameClassifier(FlashImage image, IFrameSource source, StatusPins? pins, Func<long>? busBytesRead = null, ExecutionPlan? plan = null)
{
    readonly InferenceEngine _engine = new(image, plan ?? new ExecutionPlan(image.Model));
    FramePreprocessor? _preprocessor;
    readonly TimedRows _timed = new();

    /// <summary>The preprocessor's rows, timed: its share of the frame, which the engine interleaves with its own work.</summary>
    sealed class TimedRows : IInputRows
    {
        public FramePreprocessor Rows = null!;
        public long Ticks;

        public void WriteRows(int first, int count, Span<short> rows)
        {
            long start = Stopwatch.GetTimestamp();
            Rows.WriteRows(first, count, rows);
            Ticks += Stopwatch.GetTimestamp() - start;
        }
    }

    public InferenceEngine Engine => _engine;
    /// <summary>The preprocessor for the current frame size (null before the first frame).</summary>
    public FramePreprocessor? Preprocessor => _preprocessor;

    /// <summary>Classifies frames until the source ends, <paramref name="maxFrames"/> (0 = no limit) or cancellation.</summary>
    public int Run(int maxFrames, CancellationToken cancel, Action<FrameResult> report)
    {
        int done = 0;
        while (!cancel.IsCancellationRequested && (maxFrames == 0 || done < maxFrames))
        {
            if (pins is { HasButton: true } && !pins.WaitForPress(cancel)) break;
            var frame = source.Capture();
            if (frame == null) break;
            report(Classify(frame, done, source.FrameName ?? source.Description));
            done++;
        }
        return done;
    }

    public FrameResult Classify(Frame frame, int index, string sourceName)
    {
        using var busy = pins?.LightWhileBusy();
        long bus0 = busBytesRead?.Invoke() ?? 0;
        var sw = Stopwatch.StartNew();
        if (_preprocessor == null || _preprocessor.FrameWidth != frame.Width || _preprocessor.FrameHeight != frame.Height)
            _preprocessor = FramePreprocessor.For(image.Model, frame.Width, frame.Height);
        _preprocessor.Begin(frame);
        _timed.Rows = _preprocessor;
        _timed.Ticks = 0;
        _engine.Run(_timed);
        double preMs = _timed.Ticks * 1000.0 / Stopwatch.Frequency;
        double inferMs = sw.Elapsed.TotalMilliseconds - preMs;
        var logits = _engine.Logits;
        var top5 = Top5(logits);
        return new FrameResult(index, sourceName, top5, Top1Probability(logits, top5[0], image.Model.Output.OutFrac),
            preMs, inferMs, (busBytesRead?.Invoke() ?? 0) - bus0, (int[])logits.Clone());
    }

    static int[] Top5(int[] logits) =>
        Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(5).ToArray();

    /// <summary>Softmax probability of the top class (reporting only; the runtime itself stays integer).</summary>
    static double Top1Probability(int[] logits, int top, int outFrac)
    {
        double scale = Math.Pow(2, -outFrac), sum = 0;
        foreach (int l in logits) sum += Math.Exp((l - logits[top]) * scale);
        return 1 / sum;
    }
}
