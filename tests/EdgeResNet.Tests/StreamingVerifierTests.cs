using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Engine;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

/// <summary>Weight sections checked while the engine streams them: same logits, no extra reads, every corruption caught on the first frame.</summary>
[TestClass]
public sealed class StreamingVerifierTests
{
    [TestMethod]
    public void TheFirstFrameVerifiesEverySectionWithoutExtraReads()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        var q = Quantizer.QuantizeInput(inputs[0], model);
        var plain = new CountingFlash(new MemoryFlash(bytes));
        var plainEngine = new InferenceEngine(FlashImage.Open(plain, verifySections: false));
        long p0 = plain.BytesRead;
        var expected = (int[])plainEngine.Run(q).Clone();
        long plainFrame = plain.BytesRead - p0;

        var counting = new CountingFlash(new MemoryFlash(bytes));
        var image = FlashImage.OpenVerifyingWhileStreaming(counting, out var verifier);
        var engine = new InferenceEngine(image);
        Assert.AreEqual(0, verifier.Verified);
        long before = counting.BytesRead;
        CollectionAssert.AreEqual(expected, engine.Run(q));
        Assert.IsTrue(verifier.AllVerified, $"{verifier.Verified} of {verifier.Sections} sections verified");
        Assert.AreEqual(model.Layers.Count(l => l.WeightsSize > 0), verifier.Sections);
        Assert.AreEqual(plainFrame, counting.BytesRead - before, "the same flash reads per frame as without verification");
    }

    [TestMethod]
    public void AFlippedBitInAnyWeightSectionStopsTheFirstFrameNamingTheLayer()
    {
        var (model, bytes, inputs) = RuntimeTests.MiniPacked(new QuantOptions());
        var q = Quantizer.QuantizeInput(inputs[0], model);
        var rng = new Random(5);
        foreach (var l in FlashImage.Open(new MemoryFlash(bytes)).Model.Layers.Where(l => l.WeightsSize > 0))
        {
            var bad = (byte[])bytes.Clone();
            bad[l.WeightsOffset + rng.NextInt64(l.WeightsSize)] ^= (byte)(1 << rng.Next(8));
            var engine = new InferenceEngine(FlashImage.OpenVerifyingWhileStreaming(new MemoryFlash(bad), out _));
            var e = Assert.ThrowsExactly<FlashImageException>(() => engine.Run(q), l.Name);
            StringAssert.Contains(e.Message, $"layer '{l.Name}': weights section CRC mismatch");
        }
    }

    [TestMethod]
    public void ABnSectionIsCheckedBeforeTheFirstFrame()
    {
        var (_, bytes, _) = RuntimeTests.MiniPacked(new QuantOptions());
        var l = FlashImage.Open(new MemoryFlash(bytes)).Model.Layers.First(x => x.BnSize > 0);
        bytes[l.BnOffset + 3] ^= 0x40;
        var e = Assert.ThrowsExactly<FlashImageException>(() => FlashImage.OpenVerifyingWhileStreaming(new MemoryFlash(bytes), out _));
        StringAssert.Contains(e.Message, $"layer '{l.Name}': BN section CRC mismatch");
    }
}
