using EdgeResNet.Runtime.Input;
using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;
using EdgeResNet.Tools.Packing;
using EdgeResNet.Tools.Quantization;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class FlashImageTests
{
    [TestMethod]
    public void BitPackingRoundTripsEveryWidth()
    {
        var rng = new Random(1);
        for (int bits = 2; bits <= 16; bits++)
        {
            int max = (1 << (bits - 1)) - 1, min = -(1 << (bits - 1));
            var values = new short[] { (short)min, (short)max, 0, -1, 1 }.Concat(Enumerable.Range(0, 1000).Select(_ => (short)rng.Next(min, max + 1))).ToArray();
            var packed = new byte[BitPacking.PackedBytes(values.Length, bits)];
            BitPacking.Pack(values, bits, packed);
            var back = new short[values.Length];
            BitPacking.Unpack(packed, bits, back);
            CollectionAssert.AreEqual(values, back, $"{bits} bits");
        }
        Assert.AreEqual(5, BitPacking.PackedBytes(4, 10)); // 4 ten-bit weights in 5 bytes
    }

    [TestMethod]
    public void RuntimeCrcEqualsSystemIoHashing()
    {
        var data = new byte[10_000];
        new Random(4).NextBytes(data);
        Assert.AreEqual(System.IO.Hashing.Crc32.HashToUInt32(data), Crc32.Append(Crc32.Append(0, data.AsSpan(0, 3333)), data.AsSpan(3333)));
    }

    static (QModel Model, byte[] Image) TinyImage(BnScheme scheme = BnScheme.Separate)
    {
        var (_, _, model) = QuantizationTests.TinyQuantized(new QuantOptions(10, 16, scheme));
        return (model, FlashImageWriter.ToBytes(model));
    }

    [TestMethod]
    public void ImageRoundTripsTheModel()
    {
        foreach (var scheme in new[] { BnScheme.Separate, BnScheme.Folded })
        {
            var (model, bytes) = TinyImage(scheme);
            var loaded = FlashImage.Open(new MemoryFlash(bytes)).LoadAll();
            Assert.AreEqual(model.Scheme, loaded.Scheme);
            Assert.AreEqual(model.InputFrac, loaded.InputFrac);
            Assert.HasCount(model.Layers.Length, loaded.Layers);
            for (int i = 0; i < model.Layers.Length; i++)
            {
                var (a, b) = (model.Layers[i], loaded.Layers[i]);
                Assert.AreEqual(a.Name, b.Name);
                Assert.AreEqual((a.Op, a.OutFrac, a.OutShift, a.OffsetShift, a.AccumulatorBits, a.Relu), (b.Op, b.OutFrac, b.OutShift, b.OffsetShift, b.AccumulatorBits, b.Relu));
                CollectionAssert.AreEqual(a.Weights, b.Weights, a.Name);
                CollectionAssert.AreEqual(a.Multipliers, b.Multipliers, a.Name);
                CollectionAssert.AreEqual(a.Offsets, b.Offsets, a.Name);
            }
            // and the simulator gives identical logits from the loaded image
            var x = Enumerable.Range(0, model.InputSize).Select(i => (short)(i * 37 % 2000 - 1000)).ToArray();
            CollectionAssert.AreEqual(new IntegerSimulator(model).Run(x), new IntegerSimulator(loaded).Run(x));
        }
    }

    [TestMethod]
    public void EverySingleByteCorruptionOfHeaderAndTableIsRejected()
    {
        var (model, bytes) = TinyImage();
        int tableEnd = FlashImage.HeaderSize + model.Layers.Length * FlashImage.LayerRecordSize;
        foreach (byte flip in new byte[] { 0x01, 0x80, 0xFF })
            for (int i = 0; i < tableEnd; i++)
            {
                var bad = (byte[])bytes.Clone();
                bad[i] ^= flip;
                Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bad), verifySections: false), $"byte {i} ^ {flip:x2}");
            }
    }

    [TestMethod]
    public void CorruptSectionsNameTheLayer()
    {
        var (_, bytes) = TinyImage();
        var conv = FlashImage.Open(new MemoryFlash(bytes)).Model.Layers.First(l => l.Op == QOp.Conv);
        var bad = (byte[])bytes.Clone();
        bad[conv.WeightsOffset + 3] ^= 0x10;
        var e = Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bad)));
        StringAssert.Contains(e.Message, conv.Name);
        StringAssert.Contains(e.Message, "weights");
        bad = (byte[])bytes.Clone();
        bad[conv.BnOffset] ^= 0x01;
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bad))).Message, "BN");
        // alignment padding: BadInputTests.AFlippedPaddingByteIsRefusedByBothWaysOfOpening
    }

    [TestMethod]
    public void TruncatedImageIsRejected()
    {
        var (_, bytes) = TinyImage();
        foreach (int length in new[] { 0, 10, FlashImage.HeaderSize, FlashImage.HeaderSize + 5, bytes.Length / 2, bytes.Length - 1 })
        {
            var e = Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bytes[..length])), $"length {length}");
            Assert.IsFalse(string.IsNullOrWhiteSpace(e.Message));
        }
    }

    [TestMethod]
    public void OtherVersionIsRejectedByName()
    {
        var (_, bytes) = TinyImage();
        var header = bytes.AsSpan(0, FlashImage.HeaderSize);
        header[8] = 3; // version 3, with a header CRC that matches
        BitConverter.TryWriteBytes(header.Slice(FlashImage.HeaderSize - 4), Crc32.Append(0, header.Slice(0, FlashImage.HeaderSize - 4)));
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bytes))).Message, "version 3");
    }

    /// <summary>A version 1 image (64-byte header, no preprocessing parameters) gets told to be packed again.</summary>
    [TestMethod]
    public void Version1ImageIsToldToPackAgain()
    {
        var (_, bytes) = TinyImage();
        var v1 = bytes.AsSpan(0, 64).ToArray();
        v1[8] = 1; v1[10] = 64;
        BitConverter.TryWriteBytes(v1.AsSpan(60), Crc32.Append(0, v1.AsSpan(0, 60)));
        var e = Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(v1)));
        StringAssert.Contains(e.Message, "version 1");
        StringAssert.Contains(e.Message, "edgeresnet pack");
    }

    [TestMethod]
    public void ThePreprocessingTravelsInTheHeader()
    {
        var (model, _) = TinyImage();
        model.Preprocessing = new InputPreprocessing { ResizeShorterSide = 300, CropSize = model.InputH, Order = ChannelOrder.Rgb, MeanMilli = [1, 2, 3] };
        var read = FlashImage.Open(new MemoryFlash(FlashImageWriter.ToBytes(model))).Model.Preprocessing;
        Assert.AreEqual((300, model.InputH, ChannelOrder.Rgb), (read.ResizeShorterSide, read.CropSize, read.Order));
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, read.MeanMilli);
        model.Preprocessing = new InputPreprocessing { ResizeShorterSide = 300, CropSize = model.InputH + 1, MeanMilli = [0, 0, 0] };
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(FlashImageWriter.ToBytes(model)))).Message, "preprocessing");
    }

    /// <summary>The writer computes offsets and CRCs without writing them into the model: packing twice gives the same bytes, and the placements it returns are what the reader finds.</summary>
    [TestMethod]
    public void TheWriterLeavesTheModelUntouched()
    {
        var (model, bytes) = TinyImage();
        var packed = FlashImageWriter.Pack(model);
        CollectionAssert.AreEqual(bytes, packed.Bytes);
        Assert.IsTrue(model.Layers.All(l => l.WeightsOffset == 0 && l.BnOffset == 0 && l.WeightsCrc == 0 && l.BnCrc == 0), "the tools' model carries no placement");
        var read = FlashImage.Open(new MemoryFlash(packed.Bytes)).Model.Layers;
        for (int i = 0; i < read.Length; i++)
            Assert.AreEqual(packed.Sections[i], new SectionPlacement { WeightsOffset = read[i].WeightsOffset, BnOffset = read[i].BnOffset, WeightsCrc = read[i].WeightsCrc, BnCrc = read[i].BnCrc }, read[i].Name);
        Assert.IsTrue(packed.Sections.Count(s => s.WeightsCrc != 0) >= 2);
    }
}
