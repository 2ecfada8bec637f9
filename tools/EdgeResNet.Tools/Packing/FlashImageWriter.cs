using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Tools.Packing;

/// <summary>A laid-out flash image: its bytes, where each layer's sections went, and the CRCs of the table and the body.</summary>
public sealed record PackedImage(byte[] Bytes, IReadOnlyList<SectionPlacement> Sections, uint TableCrc, uint ImageCrc);

/// <summary>
/// Lays out and writes a quantised model as a flash image (docs/flash-format.md). The runtime's
/// <see cref="FlashImage"/> owns the record encodings and <see cref="Crc32"/> the checksum; this
/// class decides offsets, packs the weights and computes the CRCs, leaving the model untouched,
/// and writes atomically (temporary file, then rename).
/// </summary>
public static class FlashImageWriter
{
    public static PackedImage Pack(QModel model)
    {
        var sections = new SectionPlacement[model.Layers.Length];
        long offset = Layout(model.Layers, l => l.WeightsSize, sections);
        var image = new byte[checked((int)offset)];
        for (int i = 0; i < model.Layers.Length; i++)
        {
            var l = model.Layers[i];
            if (l.Op != QOp.Conv) continue;
            var weights = image.AsSpan((int)sections[i].WeightsOffset, (int)l.WeightsSize);
            for (int c = 0; c < l.OutC; c++)
                BitPacking.Pack(l.Weights.AsSpan(c * l.WeightStride, l.ReduceSize), l.WeightBits, weights.Slice(c * l.RowBytes, l.RowBytes));
            var bn = image.AsSpan((int)sections[i].BnOffset, l.BnSize);
            for (int c = 0; c < l.OutC; c++)
            {
                BitConverter.TryWriteBytes(bn.Slice(4 * c), l.Multipliers[c]);
                BitConverter.TryWriteBytes(bn.Slice(4 * (l.OutC + c)), l.Offsets[c]);
            }
            sections[i].WeightsCrc = Crc32.Append(0, weights);
            sections[i].BnCrc = Crc32.Append(0, bn);
        }
        var table = image.AsSpan(FlashImage.HeaderSize, model.Layers.Length * FlashImage.LayerRecordSize);
        for (int i = 0; i < model.Layers.Length; i++)
            FlashImage.EncodeLayer(model.Layers[i], sections[i], table.Slice(i * FlashImage.LayerRecordSize, FlashImage.LayerRecordSize));
        uint tableCrc = Crc32.Append(0, table);
        uint imageCrc = Crc32.Append(0, image.AsSpan(FlashImage.HeaderSize));
        FlashImage.EncodeHeader(model, image.Length, tableCrc, imageCrc, image);
        return new PackedImage(image, sections, tableCrc, imageCrc);
    }

    /// <summary>Places every layer's sections (into <paramref name="sections"/> if given) and returns the image size.</summary>
    static long Layout(QLayer[] layers, Func<QLayer, long> weightsSize, SectionPlacement[]? sections)
    {
        long offset = FlashImage.HeaderSize + (long)layers.Length * FlashImage.LayerRecordSize;
        for (int i = 0; i < layers.Length; i++)
        {
            var l = layers[i];
            if (l.Op != QOp.Conv) continue;
            long weights = Align(offset, FlashImage.SectionAlignment), bn = Align(weights + weightsSize(l), FlashImage.BnAlignment);
            if (sections != null) { sections[i].WeightsOffset = weights; sections[i].BnOffset = bn; }
            offset = bn + l.BnSize;
        }
        return offset;
    }

    /// <summary>The size of the image of <paramref name="layers"/> with conv layer i's weights at <paramref name="bitsOf"/>(i) bits (the flash-budget search).</summary>
    public static long ImageBytes(QLayer[] layers, Func<int, int> bitsOf) =>
        Layout(layers, l => (long)BitPacking.PackedBytes(l.ReduceSize, bitsOf(Array.IndexOf(layers, l))) * l.OutC, null);

    public static byte[] ToBytes(QModel model) => Pack(model).Bytes;

    public static void Write(QModel model, string path) => AtomicFile.WriteAllBytes(path, ToBytes(model));

    static long Align(long x, int a) => (x + a - 1) / a * a;
}
