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
        var (model, bytes) = TinyImage();
        var conv = model.Layers.First(l => l.Op == QOp.Conv);
        var bad = (byte[])bytes.Clone();
        bad[conv.WeightsOffset + 3] ^= 0x10;
        var e = Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bad)));
        StringAssert.Contains(e.Message, conv.Name);
        StringAssert.Contains(e.Message, "weights");
        bad = (byte[])bytes.Clone();
        bad[conv.BnOffset] ^= 0x01;
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bad))).Message, "BN");
        bad = (byte[])bytes.Clone();
        bad[conv.WeightsOffset - 1] ^= 0x01; // alignment padding: only the whole-image CRC sees it
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bad))).Message, "whole-image");
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
        var (model, bytes) = TinyImage();
        var header = bytes.AsSpan(0, FlashImage.HeaderSize);
        header[8] = 2; // version 2, with a header CRC that matches
        BitConverter.TryWriteBytes(header.Slice(60), Crc32.Append(0, header.Slice(0, 60)));
        StringAssert.Contains(Assert.ThrowsExactly<FlashImageException>(() => FlashImage.Open(new MemoryFlash(bytes))).Message, "version 2");
    }
}
