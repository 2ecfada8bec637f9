using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

/// <summary>
/// A flash image run by the device runtime (<see cref="InferenceEngine"/>), streaming weights from
/// the file as it would from flash. One engine per thread (an engine runs one frame at a time).
/// </summary>
public sealed class RuntimeClassifier : IClassifier, IDisposable
{
    readonly string _path;
    readonly ThreadLocal<Instance> _instances;

    public sealed record Instance(FileFlash File, CountingFlash Flash, FlashImage Image, InferenceEngine Engine);

    public RuntimeClassifier(string path)
    {
        _path = path;
        using (var file = new FileFlash(path)) FlashImage.Open(file, verifySections: true); // every CRC, once, up front
        _instances = new ThreadLocal<Instance>(Open, trackAllValues: true);
    }

    Instance Open()
    {
        var file = new FileFlash(_path);
        var counting = new CountingFlash(file);
        var image = FlashImage.Open(counting, verifySections: false);
        return new Instance(file, counting, image, new InferenceEngine(image));
    }

    public string Name => Path.GetFileName(_path) + " (runtime)";
    public Instance Current => _instances.Value!;

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
        foreach (var i in _instances.Values) i.File.Dispose();
        _instances.Dispose();
    }
}
