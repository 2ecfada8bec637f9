using EdgeResNet.Common;
using EdgeResNet.Tools.Imaging;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tools.Evaluation;

/// <summary>
/// A flash image run by the device runtime (<see cref="InferenceEngine"/>), streaming weights from
/// the file (or bytes) as it would from flash. One engine per thread (an engine runs one frame at a time), all of one plan.
/// </summary>
public sealed class RuntimeClassifier : IClassifier, IDisposable
{
    readonly Func<IFlash> _open;
    readonly ThreadLocal<Instance> _instances;
    readonly int _engineThreads;
    readonly ExecutionPlan _plan; // one plan for every thread's engine: it is read-only once made

    public sealed record Instance(IFlash Source, CountingFlash Flash, FlashImage Image, InferenceEngine Engine);

    /// <param name="open">Opens the flash holding the image, once per thread; disposed with the classifier when disposable.</param>
    /// <param name="engineThreads">Threads each engine runs one frame on (the flash must allow reads from several threads).</param>
    /// <param name="ramBudgetBytes">The RAM budget each engine is planned for (null: <see cref="ExecutionPlan.DefaultBudget"/> for the threads).</param>
    public RuntimeClassifier(string name, Func<IFlash> open, int engineThreads = 1, long? ramBudgetBytes = null)
    {
        if (engineThreads < 1) throw new UsageException("--threads must be at least 1");
        Name = name;
        _open = open;
        _engineThreads = engineThreads;
        var first = open();
        try
        {
            var model = FlashImage.Open(first, verifySections: true).Model; // every CRC, once, up front
            CaffePreprocessing.CheckMatches(model);
            _plan = PlanFor(model, ramBudgetBytes, engineThreads); // a bad budget fails here, before any photo
        }
        finally { (first as IDisposable)?.Dispose(); }
        _instances = new ThreadLocal<Instance>(Open, trackAllValues: true);
    }

    public RuntimeClassifier(string path, int engineThreads = 1, long? ramBudgetBytes = null)
        : this(Path.GetFileName(path) + " (runtime)", () => new FileFlash(path), engineThreads, ramBudgetBytes) { }

    /// <summary>An image held in memory (the sweep: quantised, laid out, run, never written; bench and profile: read once, streamed from RAM).</summary>
    public static RuntimeClassifier FromBytes(string name, byte[] image, int engineThreads = 1, long? ramBudgetBytes = null) =>
        new(name, () => new MemoryFlash(image), engineThreads, ramBudgetBytes);

    /// <summary>A flash image file's bytes, to stream from RAM as a memory-mapped (XIP) flash is read.</summary>
    public static byte[] ReadImage(string path) =>
        File.Exists(path) ? File.ReadAllBytes(path) : throw new FileNotFoundException($"flash image not found: {path} (pack one with ./edgeresnet pack --out {path})", path);

    Instance Open()
    {
        var source = _open();
        var counting = CountingFlash.Of(source);
        var image = FlashImage.Open(counting, verifySections: false);
        return new Instance(source, counting, image, new InferenceEngine(image, _plan));
    }

    /// <summary>
    /// The plan for a RAM budget (null: <see cref="ExecutionPlan.DefaultBudget"/> for the threads); a budget below the smallest
    /// plan is a usage error that names the smallest plan's RAM.
    /// </summary>
    public static ExecutionPlan PlanFor(QModel model, long? ramBudgetBytes, int threads = 1, bool referenceKernels = false)
    {
        if (ramBudgetBytes <= 0) throw new UsageException($"--ram-budget {ramBudgetBytes}: give a positive number of bytes");
        long budget = ramBudgetBytes ?? ExecutionPlan.DefaultBudget(model, threads);
        try { return new ExecutionPlan(model, ramBudgetBytes: budget, referenceKernels: referenceKernels, threads: threads); }
        catch (PlanException e) when (e.IsOverBudget)
        {
            throw new UsageException($"--ram-budget {budget:N0} B is below the smallest plan for this image, {e.SmallestRamBytes:N0} B; give at least that");
        }
    }

    public string Name { get; }
    public Instance Current => _instances.Value!;

    /// <summary>The runtime engine and the conv kernel it runs on this machine.</summary>
    public string Engine => $"runtime engine ({Current.Engine.ConvKernel})";

    public int[] IntegerLogits(float[] input) => IntegerLogits(Quantizer.QuantizeInput(input, Current.Image.Model));

    /// <summary>Logits for an input already in the image's input format (the engine's buffer: copy before the next frame).</summary>
    public int[] IntegerLogits(ReadOnlySpan<short> input)
    {
        return Current.Engine.Run(input);
    }

    public double[] Logits(float[] input)
    {
        double scale = Math.Pow(2, -Current.Image.Model.Output.OutFrac);
        return IntegerLogits(input).Select(v => v * scale).ToArray();
    }

    public void Dispose()
    {
        foreach (var i in _instances.Values)
        {
            i.Engine.Dispose();
            (i.Source as IDisposable)?.Dispose();
        }
        _instances.Dispose();
    }
}
