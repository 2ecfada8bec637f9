using System.Text.Json.Nodes;
using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class ImporterTests
{
    [TestMethod]
    public void ImportsEveryLayerTypeWithShapes()
    {
        using var m = TinyTfjsModel.Residual();
        var net = TfjsImporter.Load(m.ModelJson);
        string Shape(string name) => net.ByName[name].OutShape.ToString();
        Assert.AreEqual("11x11x3", Shape("pad"));
        Assert.AreEqual("5x5x4", Shape("conv_a"));
        Assert.AreEqual("5x5x4", Shape("conv_b"));
        Assert.AreEqual(1, net.ByName["conv_b"].PadTop); // "same" 3x3 resolved to explicit padding
        Assert.AreEqual("3x3x4", Shape("pool"));
        Assert.AreEqual("1x1x5", Shape("fc"));
        Assert.AreEqual(5, net.Classes);
        Assert.IsTrue(net.Output.Softmax);
        Assert.AreEqual(LayerKind.Add, net.ByName["add"].Kind);
    }

    [TestMethod]
    public void HandComputedConvAndDense()
    {
        // 2x2x1 input, 2x2 conv with two filters, global average (of one pixel), dense.
        var rng = new Random(0);
        using var m = new TinyTfjsModel().Input("in", 2, 2, 1)
            .Conv("conv", "in", 1, 2, 2, 1, "valid", rng, kernel: [1, -1, 2, 0, 3, 1, 4, 0.5f], bias: [0.5f, -1])
            .Layer("GlobalAveragePooling2D", "gap", ["conv"], new JsonObject())
            .Dense("fc", "gap", 2, 2, rng, kernel: [1, 2, 3, 4], bias: [0, 10])
            .Write();
        var net = TfjsImporter.Load(m.ModelJson);
        var logits = new FloatReference(net).Forward([1, 2, 3, 4]);
        // HWIO: filter 0 = [1,2,3,4], filter 1 = [-1,0,1,0.5]: conv = [30.5, 3], dense = [30.5+9, 61+12+10].
        CollectionAssert.AreEqual(new[] { 39.5f, 83f }, logits);
    }

    [TestMethod]
    public void MissingModelFileIsAClearError()
    {
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => TfjsImporter.Load("/nonexistent/model.json"));
        StringAssert.Contains(e.Message, "/nonexistent/model.json");
    }

    [TestMethod]
    public void BadJsonIsAClearError()
    {
        using var m = TinyTfjsModel.Residual();
        File.WriteAllText(m.ModelJson, "{ \"modelTopology\": [ ");
        var e = Assert.ThrowsExactly<ModelFormatException>(() => TfjsImporter.Load(m.ModelJson));
        StringAssert.Contains(e.Message, "not valid JSON");
    }

    [TestMethod]
    public void WrongShardSizeIsAClearError()
    {
        using var m = TinyTfjsModel.Residual();
        var shard = Path.Combine(m.Dir, "group1-shard2of2.bin");
        File.WriteAllBytes(shard, File.ReadAllBytes(shard)[..^4]);
        var e = Assert.ThrowsExactly<ModelFormatException>(() => TfjsImporter.Load(m.ModelJson));
        StringAssert.Contains(e.Message, "group1-shard2of2.bin");
        StringAssert.Contains(e.Message, "fetch-weights");
    }

    [TestMethod]
    public void MissingShardIsAClearError()
    {
        using var m = TinyTfjsModel.Residual();
        File.Delete(Path.Combine(m.Dir, "group1-shard1of2.bin"));
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => TfjsImporter.Load(m.ModelJson));
        StringAssert.Contains(e.Message, "group1-shard1of2.bin");
    }

    [TestMethod]
    public void UnknownLayerTypeNamesTheLayer()
    {
        var rng = new Random(0);
        using var m = new TinyTfjsModel().Input("in", 4, 4, 2)
            .Layer("SeparableConv2D", "sep_conv", ["in"], new JsonObject())
            .Write();
        var e = Assert.ThrowsExactly<ModelFormatException>(() => TfjsImporter.Load(m.ModelJson));
        StringAssert.Contains(e.Message, "'sep_conv'");
        StringAssert.Contains(e.Message, "SeparableConv2D");
    }

    [TestMethod]
    public void WeightShapeMismatchNamesTheLayer()
    {
        var rng = new Random(0);
        using var m = new TinyTfjsModel().Input("in", 4, 4, 2)
            .Conv("conv", "in", 3, 2, 1, 1, "valid", rng) // kernel made for 3 input channels, the input has 2
            .Write();
        var e = Assert.ThrowsExactly<ModelFormatException>(() => TfjsImporter.Load(m.ModelJson));
        StringAssert.Contains(e.Message, "'conv'");
        StringAssert.Contains(e.Message, "conv/kernel");
    }

    [TestMethod]
    public void AddOfDifferentShapesNamesTheLayer()
    {
        var rng = new Random(0);
        using var m = new TinyTfjsModel().Input("in", 4, 4, 2)
            .Conv("a", "in", 2, 2, 1, 1, "valid", rng)
            .Conv("b", "in", 2, 3, 1, 1, "valid", rng)
            .Layer("Add", "sum", ["a", "b"], new JsonObject())
            .Write();
        var e = Assert.ThrowsExactly<ModelFormatException>(() => TfjsImporter.Load(m.ModelJson));
        StringAssert.Contains(e.Message, "'sum'");
    }
}
