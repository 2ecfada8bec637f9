using EdgeResNet.Tools.Float;
using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class OnnxTests
{
    [TestMethod]
    public void OnnxRuntimeOnTheExportedTinyNetworkMatchesTheFloatReference()
    {
        using var m = TinyTfjsModel.Residual(seed: 7);
        var net = TfjsImporter.Load(m.ModelJson);
        var reference = new FloatReference(net);
        string onnx = Path.Combine(m.Dir, "tiny.onnx");
        OnnxExporter.Save(net, onnx);
        using var ort = new OrtRunner(onnx, threads: 1);
        var rng = new Random(3);
        for (int trial = 0; trial < 5; trial++)
        {
            var input = Enumerable.Range(0, net.Input.OutShape.Size).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
            var ours = reference.Forward(input);
            var theirs = ort.Logits(input);
            Assert.HasCount(5, theirs);
            for (int i = 0; i < ours.Length; i++)
                Assert.AreEqual(ours[i], theirs[i], 1e-4, $"trial {trial}, logit {i}");
        }
    }
}
