using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Tools.Packing;

/// <summary>
/// Lays out and writes a quantised model as a flash image (docs/flash-format.md). The runtime's
/// <see cref="FlashImage"/> owns the record encodings; this class decides offsets, packs the
/// weights, computes the CRCs and writes atomically (temporary file, then rename).
/// </summary>
public static class FlashImageWriter
{
    const int BnAlignment = 256; // a flash page

    public static byte[] ToBytes(QModel model)
    {
        long offset = FlashImage.HeaderSize + (long)model.Layers.Length * FlashImage.LayerRecordSize;
        foreach (var l in model.Layers)
        {
            l.WeightsOffset = l.BnOffset = 0;
            l.WeightsSize = l.BnSize = l.RowBytes = 0;
            if (l.Op != QOp.Conv) continue;
            l.RowBytes = BitPacking.PackedBytes(l.ReduceSize, l.WeightBits);
            l.WeightsOffset = Align(offset, FlashImage.SectionAlignment);
            l.WeightsSize = (long)l.RowBytes * l.OutC;
            l.BnOffset = Align(l.WeightsOffset + l.WeightsSize, BnAlignment);
            l.BnSize = 8 * l.OutC;
            offset = l.BnOffset + l.BnSize;
        }
        var image = new byte[checked((int)offset)];
        foreach (var l in model.Layers.Where(l => l.Op == QOp.Conv))
        {
            for (int c = 0; c < l.OutC; c++)
                BitPacking.Pack(l.Weights.AsSpan(c * l.WeightStride, l.ReduceSize), l.WeightBits,
                    image.AsSpan((int)l.WeightsOffset + c * l.RowBytes, l.RowBytes));
            var bn = image.AsSpan((int)l.BnOffset, l.BnSize);
            for (int c = 0; c < l.OutC; c++)
            {
                BitConverter.TryWriteBytes(bn.Slice(4 * c), l.Multipliers[c]);
                BitConverter.TryWriteBytes(bn.Slice(4 * (l.OutC + c)), l.Offsets[c]);
            }
            l.WeightsCrc = System.IO.Hashing.Crc32.HashToUInt32(image.AsSpan((int)l.WeightsOffset, (int)l.WeightsSize));
            l.BnCrc = System.IO.Hashing.Crc32.HashToUInt32(bn);
        }
        var table = image.AsSpan(FlashImage.HeaderSize, model.Layers.Length * FlashImage.LayerRecordSize);
        for (int i = 0; i < model.Layers.Length; i++)
            FlashImage.EncodeLayer(model.Layers[i], table.Slice(i * FlashImage.LayerRecordSize, FlashImage.LayerRecordSize));
        uint tableCrc = System.IO.Hashing.Crc32.HashToUInt32(table);
        uint imageCrc = System.IO.Hashing.Crc32.HashToUInt32(image.AsSpan(FlashImage.HeaderSize));
        FlashImage.EncodeHeader(model, image.Length, tableCrc, imageCrc, image);
        return image;
    }

    public static void Write(QModel model, string path) => AtomicFile.WriteAllBytes(path, ToBytes(model));

    static long Align(long x, int a) => (x + a - 1) / a * a;
}
