using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Evaluation;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>validate's per-layer comparison of the integer network with the float one, on the real ResNet-50.</summary>
[TestClass]
public sealed class ValidationTests
{
    [TestMethod]
    public void EachIntegerLayerIsComparedWithTheFloatTensorItComputes()
    {
        var net = RealModelTests.Net();
        var floatOf = Quantizer.FloatOutputOf(net);
        Assert.AreEqual(LayerKind.Relu, net.ByName[floatOf["conv1"]].Kind, "conv1 takes in its BN and ReLU");
        Assert.AreEqual(LayerKind.BatchNorm, net.ByName[floatOf["res2a_branch2c"]].Kind, "the last conv of a block ends at its BN (the ReLU follows the add)");
        Assert.AreEqual(LayerKind.Relu, net.ByName[floatOf["add"]].Kind);
        Assert.AreEqual("max_pooling2d", floatOf["max_pooling2d"]);

        var (model, bytes) = RealModelTests.Quantized(BnScheme.Separate);
        var photos = Dataset.Load(SampleImages.DirOrInconclusive(), Split.Evaluation, 2);
        var r = LayerValidation.Run("sep10", FlashImage.Open(new MemoryFlash(bytes)).LoadAll(), net, photos, threads: 2);
        Assert.AreEqual(2, r.Images);
        Assert.HasCount(model.Layers.Length, r.Layers);
        foreach (var l in r.Layers) Assert.IsTrue(l.SqnrDb > 15 && l.SqnrDb < 80, $"{l.Layer}: {l.SqnrDb:F1} dB");
        Assert.IsTrue(r.Layers.All(l => l.Values > 0));

        // A damaged layer shows up where it is: halve one conv's BN multipliers.
        var broken = FlashImage.Open(new MemoryFlash(bytes)).LoadAll();
        int hit = Array.FindIndex(broken.Layers, l => l.Name == "res3a_branch2b");
        for (int c = 0; c < broken.Layers[hit].OutC; c++) broken.Layers[hit].Multipliers[c] /= 2;
        var bad = LayerValidation.Run("broken", broken, net, photos.Take(1).ToList(), threads: 2);
        Assert.IsLessThan(10.0, bad.Layers[hit].SqnrDb, "the damaged layer");
        Assert.IsGreaterThan(15.0, bad.Layers[hit - 1].SqnrDb, "the layer before it is untouched");
    }
}
