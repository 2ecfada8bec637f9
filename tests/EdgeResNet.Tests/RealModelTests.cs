using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx;
using EdgeResNet.Tools.Weights;

namespace EdgeResNet.Tests;

/// <summary>
/// Tests on the real ResNet-50 (weights from the cache; .ci/run fetches them first). Where the
/// weights cannot be had, they are inconclusive with the reason, never silently passed.
/// </summary>
[TestClass]
public sealed class RealModelTests
{
    static Network? _net;
    static string? _unavailable;

    [ClassInitialize]
    public static void LoadModel(TestContext _)
    {
        try { _net = TfjsImporter.Load(WeightsCache.Default().Ensure(verifyHashes: false)); }
        catch (WeightsException e) { _unavailable = e.Message; }
    }

    static Network Net()
    {
        if (_net == null) Assert.Inconclusive($"ResNet-50 weights unavailable: {_unavailable}");
        return _net!;
    }

    [TestMethod]
    public void ImportedResNet50HasTheExpectedStructure()
    {
        var net = Net();
        Assert.AreEqual(25_636_712, net.WeightCount);
        Assert.AreEqual(53, net.Layers.Count(l => l.Kind == LayerKind.Conv2D));
        Assert.AreEqual(53, net.Layers.Count(l => l.Kind == LayerKind.BatchNorm));
        Assert.AreEqual(16, net.Layers.Count(l => l.Kind == LayerKind.Add));
        Assert.AreEqual(1000, net.Classes);
        Assert.AreEqual("7x7x2048", net.ByName["activation_48"].OutShape.ToString());
    }

    [TestMethod]
    public void OnnxRuntimeAgreesWithTheFloatReferenceOn20Images()
    {
        var net = Net();
        var images = Dataset.Load(SampleImages.DirOrInconclusive(), Split.All).Where((_, i) => i % 50 == 0).ToList();
        Assert.HasCount(20, images);
        var result = OrtComparison.Run(new FloatReference(net), images, threads: Environment.ProcessorCount);
        Console.WriteLine($"ORT vs float reference: {result}");
        Assert.AreEqual(20, result.Top1Agree);
        Assert.IsLessThan(1e-3, result.MaxAbsLogitDiff);
    }
}
