using EdgeResNet.Tools.Imaging;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

/// <summary>
/// A flash image run by the device runtime (<see cref="InferenceEngine"/>), streaming weights from
/// the file (or bytes) as it would from flash. One engine per thread (an engine runs one frame at a time).
/// </summary>
public sealed class RuntimeClassifier : IClassifier, IDisposable
{
    readonly Func<IFlash> _open;
    readonly ThreadLocal<Instance> _instances;

    public sealed record Instance(IFlash Source, CountingFlash Flash, FlashImage Image, InferenceEngine Engine);

    /// <param name="open">Opens the flash holding the image, once per thread; disposed with the classifier when disposable.</param>
    public RuntimeClassifier(string name, Func<IFlash> open)
    {
        Name = name;
        _open = open;
        var first = open();
        try { CaffePreprocessing.CheckMatches(FlashImage.Open(first, verifySections: true).Model); } // every CRC, once, up front
        finally { (first as IDisposable)?.Dispose(); }
        _instances = new ThreadLocal<Instance>(Open, trackAllValues: true);
    }

    public RuntimeClassifier(string path) : this(Path.GetFileName(path) + " (runtime)", () => new FileFlash(path)) { }

    /// <summary>An image held in memory (the sweep: quantised, laid out, run, never written).</summary>
    public static RuntimeClassifier FromBytes(string name, byte[] image) => new(name, () => new MemoryFlash(image));

    Instance Open()
    {
        var source = _open();
        var counting = new CountingFlash(source);
        var image = FlashImage.Open(counting, verifySections: false);
        return new Instance(source, counting, image, new InferenceEngine(image));
    }

    public string Name { get; }
    public Instance Current => _instances.Value!;

    /// <summary>The runtime engine and the conv kernel it runs on this machine.</summary>
    public string Engine => $"runtime engine ({Current.Engine.ConvKernel})";

    public int[] IntegerLogits(float[] input) => IntegerLogits(Quantizer.QuantizeInput(input, Current.Image.Model));

    /// <summary>Logits for an input already in the image's input format (the engine's buffer: copy before the next frame).</summary>
    public int[] IntegerLogits(ReadOnlySpan<short> input)
    {
        var engine = Current.Engine;
        input.CopyTo(engine.Input);
        engine.Run();
        return engine.Logits;
    }

    public double[] Logits(float[] input)
    {
        double scale = Math.Pow(2, -Current.Image.Model.Output.OutFrac);
        return IntegerLogits(input).Select(v => v * scale).ToArray();
    }

    public void Dispose()
    {
        foreach (var i in _instances.Values) (i.Source as IDisposable)?.Dispose();
        _instances.Dispose();
    }
}
