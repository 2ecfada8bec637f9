using System;
using EdgeResNet.Runtime.Kernels;

namespace EdgeResNet.Runtime.Flash
{
    /// <summary>
    /// The flash image (docs/flash-format.md): a 96-byte header (with the input preprocessing), a table of 128-byte layer records,
    /// then per layer a sector-aligned weights section (bit-packed rows, one per output channel)
    /// and a BN section (int32 multipliers, then int32 offsets). Every part has a CRC-32.
    /// Opening validates the header, the table and (optionally) every section, reading through a
    /// small buffer: the image is never loaded whole.
    /// </summary>
    public sealed class FlashImage
    {
        /// <summary>2: the header holds the input preprocessing (version 1 had a 64-byte header without it).</summary>
        public const int Version = 2;
        public const int HeaderSize = 96;
        const int HeaderCrcOffset = HeaderSize - 4;
        public const int LayerRecordSize = 128;
        public const int NameBytes = 32;
        /// <summary>Weights sections start on a flash sector (4 KiB), so one layer or channel group is one read.</summary>
        public const int SectionAlignment = NorGeometry.SectorSize;
        /// <summary>BN sections start on a flash page.</summary>
        public const int BnAlignment = NorGeometry.PageSize;
        /// <summary>The read buffer of a verification pass (its size only sets how many reads it takes).</summary>
        const int VerifyBufferBytes = 4096;
        /// <summary>
        /// Limits every image must keep (far above ResNet-50 at 224x224, whose largest tensor is
        /// 802,816 values): with them every size the reader and the planner compute fits an int, and
        /// an image with absurd geometry is refused by name before anything is sized from it.
        /// </summary>
        public const int MaxDimension = 4096, MaxChannels = 8192, MaxKernel = 16, MaxTensorElements = 1 << 25, MaxReduceSize = 1 << 16;
        /// <summary>
        /// Fraction bits of any format, the requantisation shifts, and the change of format across an Add or a
        /// global pooling stay within these, so no 64-bit shift reaches 64 and no shifted value overflows.
        /// </summary>
        public const int MaxFractionBits = 40, MaxShift = 62, MaxFormatChange = 24;
        static readonly byte[] Magic = { (byte)'E', (byte)'D', (byte)'G', (byte)'E', (byte)'R', (byte)'N', (byte)'E', (byte)'T' };

        public IFlash Flash { get; }
        public QModel Model { get; }
        public long ImageSize { get; }
        public uint ImageCrc { get; }

        FlashImage(IFlash flash, QModel model, long imageSize, uint imageCrc)
        {
            Flash = flash;
            Model = model;
            ImageSize = imageSize;
            ImageCrc = imageCrc;
        }

        /// <summary>Reads and validates header and layer table; with <paramref name="verifySections"/> also every section CRC and the whole-image CRC.</summary>
        public static FlashImage Open(IFlash flash, bool verifySections = true)
        {
            const int MagicAndVersion = 10;
            if (flash.Length < MagicAndVersion) throw new FlashImageException($"header: the flash holds {flash.Length} bytes, too few for a header (truncated image?)");
            var h = new byte[HeaderSize];
            flash.Read(0, new Span<byte>(h, 0, MagicAndVersion));
            for (int i = 0; i < Magic.Length; i++)
                if (h[i] != Magic[i]) throw new FlashImageException("header: wrong magic; this is not an EdgeResNet flash image");
            int version = U16(h, 8);
            if (version == 1) throw new FlashImageException("header: format version 1, from before the input preprocessing was stored in the image (version 2); pack the model again: edgeresnet pack --out NEW.img");
            if (version != Version) throw new FlashImageException($"header: format version {version}, this runtime reads version {Version}; pack the model again with matching tools");
            if (flash.Length < HeaderSize) throw new FlashImageException($"header: the flash holds {flash.Length} bytes, less than the {HeaderSize}-byte header (truncated image?)");
            flash.Read(0, h);
            uint headerCrc = U32(h, HeaderCrcOffset), computed = Crc32.Append(0, new Span<byte>(h, 0, HeaderCrcOffset));
            if (headerCrc != computed) throw new FlashImageException($"header: CRC mismatch (stored {headerCrc:x8}, computed {computed:x8}); the image is corrupt, pack or flash it again");
            if (U16(h, 10) != HeaderSize || U16(h, 12) != LayerRecordSize) throw new FlashImageException("header: unexpected header or layer record size");
            int layerCount = U16(h, 14);
            long imageSize = (long)U64(h, 40);
            if (imageSize > flash.Length) throw new FlashImageException($"header: the image is {imageSize} bytes but the flash holds {flash.Length} (truncated image?)");
            long tableEnd = HeaderSize + (long)layerCount * LayerRecordSize;
            if (layerCount == 0 || tableEnd > imageSize) throw new FlashImageException($"header: {layerCount} layers do not fit the {imageSize}-byte image");
            var model = new QModel
            {
                Scheme = (BnScheme)h[16], WeightBits = h[17], ActivationBits = h[18],
                InputH = U16(h, 20), InputW = U16(h, 22), InputC = U16(h, 24), InputFrac = (short)U16(h, 26),
                Preprocessing = new Input.InputPreprocessing
                {
                    ResizeShorterSide = U16(h, 52), CropSize = U16(h, 54), Order = (Input.ChannelOrder)h[56],
                    MeanMilli = new[] { (int)U32(h, 60), (int)U32(h, 64), (int)U32(h, 68) },
                },
            };
            if (h[16] > 1 || model.WeightBits < 2 || model.WeightBits > 16 || model.ActivationBits < 2 || model.ActivationBits > 16)
                throw new FlashImageException("header: scheme or bit widths out of range");
            CheckShape("header: input", model.InputH, model.InputW, model.InputC);
            CheckRange("header", "input fraction bits", model.InputFrac, -MaxFractionBits, MaxFractionBits);
            for (int c = 0; c < 3; c++) CheckRange("header", "preprocessing mean (milli)", model.Preprocessing.MeanMilli[c], 0, 255000);
            var p = model.Preprocessing;
            if (h[56] > 1 || p.CropSize != model.InputH || p.CropSize != model.InputW || p.ResizeShorterSide < p.CropSize)
                throw new FlashImageException($"header: preprocessing (resize {p.ResizeShorterSide}, crop {p.CropSize}, order {h[56]}) does not fit the {model.InputH}x{model.InputW} input");

            var table = new byte[tableEnd - HeaderSize];
            flash.Read(HeaderSize, table);
            uint tableCrc = Crc32.Append(0, table);
            if (tableCrc != U32(h, 36)) throw new FlashImageException($"layer table: CRC mismatch (stored {U32(h, 36):x8}, computed {tableCrc:x8}); the image is corrupt");
            model.Layers = new QLayer[layerCount];
            for (int i = 0; i < layerCount; i++)
                model.Layers[i] = DecodeLayer(new Span<byte>(table, i * LayerRecordSize, LayerRecordSize), i);
            Validate(model, tableEnd, imageSize);
            if (U32(h, 28) != model.Classes) throw new FlashImageException("header: class count does not match the last layer");

            var image = new FlashImage(flash, model, imageSize, U32(h, 48));
            if (verifySections) image.VerifySections();
            return image;
        }

        /// <summary>
        /// Reads the image once for the whole-image CRC, which covers every section; only when it
        /// does not match are the sections read again, to name the corrupt one.
        /// </summary>
        public void VerifySections()
        {
            var buffer = new byte[VerifyBufferBytes];
            VerifyPadding(buffer); // always (about 78 KB): the board's streaming start checks it too, so both judge padding alike
            if (Crc32.Of(Flash, HeaderSize, ImageSize - HeaderSize, buffer) == ImageCrc) return;
            foreach (var l in Model.Layers)
                if (l.WeightsSize > 0 && Crc32.Of(Flash, l.WeightsOffset, l.WeightsSize, buffer) != l.WeightsCrc)
                    throw WeightsCorrupt(l);
            VerifyBnSections(buffer);
            throw new FlashImageException("image: whole-image CRC mismatch, with every section and the padding intact; the image is corrupt, pack or flash it again");
        }

        /// <summary>
        /// Every body byte outside the sections (their alignment padding, <see cref="PaddingBytes"/>) is zero, as the writer leaves it.
        /// Both ways of opening check it, so a flipped padding byte is judged alike by a full verification
        /// and by the board's start, which does not read the whole image (ResNet-50: about 100 KB of padding).
        /// </summary>
        public long PaddingBytes
        {
            get
            {
                long sections = 0;
                foreach (var l in Model.Layers) sections += l.WeightsSize + l.BnSize;
                return ImageSize - HeaderSize - (long)Model.Layers.Length * LayerRecordSize - sections;
            }
        }

        public void VerifyPadding(byte[] buffer)
        {
            long at = HeaderSize + (long)Model.Layers.Length * LayerRecordSize;
            foreach (var section in SortedSections(Model))
            {
                CheckZero(at, section[0] - at, buffer);
                at = section[0] + section[1];
            }
            CheckZero(at, ImageSize - at, buffer);
        }

        void CheckZero(long offset, long length, byte[] buffer)
        {
            for (long done = 0; done < length;)
            {
                int n = (int)Math.Min(buffer.Length, length - done);
                Flash.Read(offset + done, new Span<byte>(buffer, 0, n));
                for (int i = 0; i < n; i++)
                    if (buffer[i] != 0)
                        throw new FlashImageException($"image: padding byte at offset {offset + done + i} is 0x{buffer[i]:x2}, not 0; the image is corrupt, pack or flash it again");
                done += n;
            }
        }

        /// <summary>Every BN section's CRC (a few hundred KB in all), reading through <paramref name="buffer"/>.</summary>
        public void VerifyBnSections(byte[] buffer)
        {
            foreach (var l in Model.Layers)
                if (l.BnSize > 0 && Crc32.Of(Flash, l.BnOffset, l.BnSize, buffer) != l.BnCrc)
                    throw new FlashImageException($"layer '{l.Name}': BN section CRC mismatch; the image is corrupt, pack or flash it again");
        }

        internal static FlashImageException WeightsCorrupt(QLayer l) =>
            new FlashImageException($"layer '{l.Name}': weights section CRC mismatch; the image is corrupt, pack or flash it again");

        /// <summary>
        /// Opens an image for the engine with the cheap checks up front (header, layer table, BN
        /// sections, padding) and the weight sections checked as the engine streams them (<see cref="StreamingVerifier"/>):
        /// no extra pass over the flash before the first frame, every section verified by its end.
        /// </summary>
        public static FlashImage OpenVerifyingWhileStreaming(IFlash flash, out StreamingVerifier verifier)
        {
            var image = Open(flash, verifySections: false);
            var buffer = new byte[VerifyBufferBytes];
            image.VerifyBnSections(buffer);
            image.VerifyPadding(buffer);
            verifier = new StreamingVerifier(flash, image.Model);
            return new FlashImage(verifier, image.Model, image.ImageSize, image.ImageCrc);
        }

        /// <summary>
        /// Reads output channels [coStart, coStart+coCount) of a conv layer (one flash read) into <paramref name="dest"/> in the
        /// <see cref="WeightLayout"/> of <paramref name="block"/>: rows of WeightStride shorts by default; another block needs
        /// <paramref name="row"/>, one row of WeightStride shorts to unpack into.
        /// </summary>
        public void ReadWeightRows(QLayer l, int coStart, int coCount, Span<byte> packed, Span<short> dest, int block = 1, Span<short> row = default, int firstChannel = 0)
        {
            var source = Bytes(l.WeightsOffset + (long)coStart * l.RowBytes, coCount * l.RowBytes, packed);
            WeightLayout.Unpack(source, l.WeightBits, l.RowBytes, l.ReduceSize, l.WeightStride, coCount, block, row, dest, firstChannel);
        }

        /// <summary>
        /// Reads the multipliers and offsets of output channels [coStart, coStart+coCount) into
        /// <paramref name="multipliers"/> and <paramref name="offsets"/> at those same indices, through <paramref name="bytes"/>.
        /// </summary>
        public void ReadBnTables(QLayer l, int coStart, int coCount, Span<int> multipliers, Span<int> offsets, Span<byte> bytes)
        {
            var table = Bytes(l.BnOffset + 4L * coStart, 4 * coCount, bytes);
            for (int c = 0; c < coCount; c++) multipliers[coStart + c] = (int)U32(table, 4 * c);
            table = Bytes(l.BnOffset + 4L * (l.OutC + coStart), 4 * coCount, bytes);
            for (int c = 0; c < coCount; c++) offsets[coStart + c] = (int)U32(table, 4 * c);
        }

        /// <summary>
        /// Bytes [at, at + length) of the flash: straight from its memory where it has one (no copy), else read into
        /// <paramref name="buffer"/>. Callers only read them.
        /// </summary>
        Span<byte> Bytes(long at, int length, Span<byte> buffer)
        {
#if NET
            // a Span of the mapping, not a ReadOnlySpan: the unpack takes a Span (a ReadOnlySpan parameter fails on Mono, whose
            // ReadOnlySpan lacks the indexer the netstandard build compiles against)
            if (Flash is IMappedFlash mapped)
                return System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(mapped.Mapped(at, length)), length);
#endif
            var bytes = buffer.Slice(0, length);
            Flash.Read(at, bytes);
            return bytes;
        }

        /// <summary>The whole model in RAM, weights included (host tools; the board streams instead).</summary>
        public QModel LoadAll()
        {
            foreach (var l in Model.Layers)
            {
                if (l.Op != QOp.Conv) continue;
                l.Weights = new short[l.OutC * l.WeightStride];
                l.Multipliers = new int[l.OutC];
                l.Offsets = new int[l.OutC];
                ReadWeightRows(l, 0, l.OutC, new byte[l.WeightsSize], l.Weights);
                ReadBnTables(l, 0, l.OutC, l.Multipliers, l.Offsets, new byte[l.BnSize]);
            }
            return Model;
        }

        static void Validate(QModel m, long tableEnd, long imageSize)
        {
            int[] h = new int[m.Layers.Length + 1], w = new int[m.Layers.Length + 1], c = new int[m.Layers.Length + 1];
            h[0] = m.InputH; w[0] = m.InputW; c[0] = m.InputC;
            for (int i = 0; i < m.Layers.Length; i++)
            {
                var l = m.Layers[i];
                string where = $"layer {i} ('{l.Name}')";
                if (l.Input0 < 0 || l.Input0 > i) throw new FlashImageException($"{where}: input tensor {l.Input0} is not produced before it");
                if (l.InH != h[l.Input0] || l.InW != w[l.Input0] || l.InC != c[l.Input0]) throw new FlashImageException($"{where}: input shape does not match tensor {l.Input0}");
                if (l.Op != QOp.Add && l.Input1 != -1) throw new FlashImageException($"{where}: second input {l.Input1} on a {l.Op} layer (only Add has one; -1 means none)");
                if (l.OutBits < 2 || l.OutBits > (l.WideOutput ? 32 : 16)) throw new FlashImageException($"{where}: output width {l.OutBits} bits out of range");
                switch (l.Op)
                {
                    case QOp.Conv:
                    case QOp.MaxPool:
                        if (l.InH + l.PadTop + l.PadBottom < l.KernelH || l.InW + l.PadLeft + l.PadRight < l.KernelW)
                            throw new FlashImageException($"{where}: the {l.KernelH}x{l.KernelW} kernel is larger than the padded {l.InH}x{l.InW} input");
                        if (l.OutH != (l.InH + l.PadTop + l.PadBottom - l.KernelH) / l.StrideH + 1 || l.OutW != (l.InW + l.PadLeft + l.PadRight - l.KernelW) / l.StrideW + 1)
                            throw new FlashImageException($"{where}: output shape does not follow from input, kernel, stride and padding");
                        if (l.Op == QOp.MaxPool && l.OutC != l.InC) throw new FlashImageException($"{where}: max pooling must keep the channels");
                        break;
                    case QOp.Add:
                        if (l.Input1 < 0 || l.Input1 > i || h[l.Input1] != l.OutH || w[l.Input1] != l.OutW || c[l.Input1] != l.OutC || l.InH != l.OutH || l.InW != l.OutW || l.InC != l.OutC)
                            throw new FlashImageException($"{where}: Add inputs and output must have one shape");
                        break;
                    case QOp.GlobalAvgPool:
                        if (l.OutH != 1 || l.OutW != 1 || l.OutC != l.InC) throw new FlashImageException($"{where}: global pooling must give 1x1xC");
                        break;
                    default:
                        throw new FlashImageException($"{where}: unknown operator {(int)l.Op}");
                }
                if (l.Op == QOp.Conv)
                {
                    CheckSection(where + " weights", l.WeightsOffset, l.WeightsSize, tableEnd, imageSize);
                    CheckSection(where + " BN", l.BnOffset, l.BnSize, tableEnd, imageSize);
                }
                if ((l.Op != QOp.Conv || i != m.Layers.Length - 1) && l.WideOutput) throw new FlashImageException($"{where}: only the last conv layer may have int32 output");
                h[i + 1] = l.OutH; w[i + 1] = l.OutW; c[i + 1] = l.OutC;
            }
            if (!m.Output.WideOutput) throw new FlashImageException("layer table: the last layer must produce the int32 logits");
            CheckNoOverlap(m);
        }

        /// <summary>Positive, within the limits, and not more values than one tensor may hold (computed in 64 bits).</summary>
        static void CheckShape(string what, int h, int w, int c)
        {
            if (h <= 0 || w <= 0 || c <= 0) throw new FlashImageException($"{what} shape {h}x{w}x{c} must be positive");
            if (h > MaxDimension || w > MaxDimension || c > MaxChannels || (long)h * w * c > MaxTensorElements)
                throw new FlashImageException($"{what} shape {h}x{w}x{c} exceeds the limits (height and width up to {MaxDimension}, channels up to {MaxChannels}, {MaxTensorElements:N0} values); the image is not a network this runtime can run");
        }

        static void CheckRange(string where, string field, int value, int min, int max)
        {
            if (value < min || value > max) throw new FlashImageException($"{where}: {field} {value} out of range {min}..{max}");
        }

        /// <summary>No two sections share a byte (the streaming verifier and the padding check rely on it).</summary>
        static void CheckNoOverlap(QModel m)
        {
            var sections = SortedSections(m);
            for (int i = 1; i < sections.Length; i++)
                if (sections[i - 1][0] + sections[i - 1][1] > sections[i][0])
                    throw new FlashImageException($"layer table: sections at {sections[i - 1][0]} (+{sections[i - 1][1]}) and {sections[i][0]} overlap; the image is corrupt");
        }

        /// <summary>Every non-empty section as {offset, size}, by offset.</summary>
        static long[][] SortedSections(QModel m)
        {
            int n = 0;
            foreach (var l in m.Layers) n += (l.WeightsSize > 0 ? 1 : 0) + (l.BnSize > 0 ? 1 : 0);
            var sections = new long[n][];
            n = 0;
            foreach (var l in m.Layers)
            {
                if (l.WeightsSize > 0) sections[n++] = new[] { l.WeightsOffset, l.WeightsSize };
                if (l.BnSize > 0) sections[n++] = new[] { l.BnOffset, (long)l.BnSize };
            }
            // Insertion sort by offset: two sections per layer at most, and it needs no comparer (the portable core has no collections library).
            for (int i = 1; i < sections.Length; i++)
                for (int j = i; j > 0 && sections[j - 1][0] > sections[j][0]; j--)
                {
                    var t = sections[j]; sections[j] = sections[j - 1]; sections[j - 1] = t;
                }
            return sections;
        }

        static void CheckSection(string what, long offset, long size, long tableEnd, long imageSize)
        {
            // no sum that a u64 field could overflow
            if (offset < tableEnd || size < 0 || size > imageSize - offset) throw new FlashImageException($"{what} section [{offset}, +{size}) lies outside the image body");
        }

        /// <summary>Writes the header (CRC included) for a model whose layer table CRC and image CRC are known.</summary>
        public static void EncodeHeader(QModel m, long imageSize, uint tableCrc, uint imageCrc, Span<byte> h)
        {
            h.Slice(0, HeaderSize).Clear();
            for (int i = 0; i < Magic.Length; i++) h[i] = Magic[i];
            W16(h, 8, Version); W16(h, 10, HeaderSize); W16(h, 12, LayerRecordSize); W16(h, 14, m.Layers.Length);
            h[16] = (byte)m.Scheme; h[17] = (byte)m.WeightBits; h[18] = (byte)m.ActivationBits;
            W16(h, 20, m.InputH); W16(h, 22, m.InputW); W16(h, 24, m.InputC); W16(h, 26, m.InputFrac);
            W32(h, 28, (uint)m.Classes); W32(h, 32, SectionAlignment); W32(h, 36, tableCrc);
            W64(h, 40, (ulong)imageSize); W32(h, 48, imageCrc);
            var p = m.Preprocessing;
            W16(h, 52, p.ResizeShorterSide); W16(h, 54, p.CropSize); h[56] = (byte)p.Order;
            for (int c = 0; c < 3; c++) W32(h, 60 + 4 * c, (uint)p.MeanMilli[c]);
            W32(h, HeaderCrcOffset, Crc32.Append(0, h.Slice(0, HeaderCrcOffset)));
        }

        /// <summary>Writes layer <paramref name="l"/>'s record, with its sections where <paramref name="s"/> places them.</summary>
        public static void EncodeLayer(QLayer l, SectionPlacement s, Span<byte> r)
        {
            r.Slice(0, LayerRecordSize).Clear();
            EncodeName(l.Name, r.Slice(0, NameBytes - 1));
            r[32] = (byte)l.Op; r[33] = (byte)(l.Relu ? 1 : 0); r[34] = (byte)(l.WideOutput ? 1 : 0); r[35] = (byte)l.OutBits;
            W16(r, 36, l.Input0); W16(r, 38, l.Input1);
            W16(r, 40, l.InH); W16(r, 42, l.InW); W16(r, 44, l.InC); W16(r, 46, l.OutH); W16(r, 48, l.OutW); W16(r, 50, l.OutC);
            r[52] = (byte)l.KernelH; r[53] = (byte)l.KernelW; r[54] = (byte)l.StrideH; r[55] = (byte)l.StrideW;
            r[56] = (byte)l.PadTop; r[57] = (byte)l.PadLeft; r[58] = (byte)l.PadBottom; r[59] = (byte)l.PadRight;
            r[60] = (byte)l.InFrac; r[61] = (byte)l.In1Frac; r[62] = (byte)l.OutFrac; r[63] = (byte)l.WeightBits;
            r[64] = (byte)l.WeightFrac; r[65] = (byte)l.MultiplierBits; r[66] = (byte)l.MultiplierFrac; r[67] = (byte)l.AccumulatorBits;
            r[68] = (byte)l.OffsetShift; r[69] = (byte)l.OutShift;
            W32(r, 72, (uint)l.RowBytes); W32(r, 76, s.WeightsCrc); W64(r, 80, (ulong)s.WeightsOffset); W64(r, 88, (ulong)l.WeightsSize);
            W64(r, 96, (ulong)s.BnOffset); W32(r, 104, (uint)l.BnSize); W32(r, 108, s.BnCrc);
        }

        // Layer names are UTF-8 in the record. The portable core has no System.Text (nanoFramework), so it codes them
        // itself: one to three bytes per UTF-16 unit (a surrogate pair's halves become '?'), truncated at a whole character.
        static void EncodeName(string name, Span<byte> r)
        {
            int n = 0;
            foreach (char c in name)
            {
                int v = c >= 0xD800 && c <= 0xDFFF ? '?' : c, size = v < 0x80 ? 1 : v < 0x800 ? 2 : 3;
                if (n + size > r.Length) return;
                if (size == 1) r[n++] = (byte)v;
                else if (size == 2) { r[n++] = (byte)(0xC0 | v >> 6); r[n++] = (byte)(0x80 | v & 0x3F); }
                else { r[n++] = (byte)(0xE0 | v >> 12); r[n++] = (byte)(0x80 | v >> 6 & 0x3F); r[n++] = (byte)(0x80 | v & 0x3F); }
            }
        }

        static string DecodeName(Span<byte> r)
        {
            var chars = new char[r.Length];
            int n = 0;
            for (int i = 0; i < r.Length; i++)
            {
                int b = r[i];
                if (b < 0x80) chars[n++] = (char)b;
                else if (b >= 0xC0 && b < 0xE0 && i + 1 < r.Length) { chars[n++] = (char)((b & 0x1F) << 6 | r[i + 1] & 0x3F); i++; }
                else if (b >= 0xE0 && b < 0xF0 && i + 2 < r.Length) { chars[n++] = (char)((b & 0x0F) << 12 | (r[i + 1] & 0x3F) << 6 | r[i + 2] & 0x3F); i += 2; }
                else chars[n++] = '?';
            }
            return new string(chars, 0, n);
        }

        static QLayer DecodeLayer(Span<byte> r, int index)
        {
            int nameLength = 0;
            while (nameLength < NameBytes && r[nameLength] != 0) nameLength++;
            var l = new QLayer
            {
                Name = DecodeName(r.Slice(0, nameLength)),
                Op = (QOp)r[32], Relu = r[33] != 0, WideOutput = r[34] != 0, OutBits = r[35],
                Input0 = (short)U16(r, 36), Input1 = (short)U16(r, 38),
                InH = U16(r, 40), InW = U16(r, 42), InC = U16(r, 44), OutH = U16(r, 46), OutW = U16(r, 48), OutC = U16(r, 50),
                KernelH = r[52], KernelW = r[53], StrideH = r[54], StrideW = r[55], PadTop = r[56], PadLeft = r[57], PadBottom = r[58], PadRight = r[59],
                InFrac = (sbyte)r[60], In1Frac = (sbyte)r[61], OutFrac = (sbyte)r[62], WeightBits = r[63],
                WeightFrac = (sbyte)r[64], MultiplierBits = r[65], MultiplierFrac = (sbyte)r[66], AccumulatorBits = r[67],
                OffsetShift = (sbyte)r[68], OutShift = (sbyte)r[69],
                WeightsCrc = U32(r, 76), WeightsOffset = (long)U64(r, 80), BnOffset = (long)U64(r, 96), BnCrc = U32(r, 108),
            };
            string where = $"layer {index} ('{l.Name}')";
            CheckShape(where + ": input", l.InH, l.InW, l.InC);
            CheckShape(where + ": output", l.OutH, l.OutW, l.OutC);
            CheckRange(where, "kernel height", l.KernelH, 1, MaxKernel);
            CheckRange(where, "kernel width", l.KernelW, 1, MaxKernel);
            CheckRange(where, "vertical stride", l.StrideH, 1, MaxKernel);
            CheckRange(where, "horizontal stride", l.StrideW, 1, MaxKernel);
            // Padding of a kernel's size or more would make whole output rows of padding alone.
            CheckRange(where, "top padding", l.PadTop, 0, l.KernelH - 1);
            CheckRange(where, "bottom padding", l.PadBottom, 0, l.KernelH - 1);
            CheckRange(where, "left padding", l.PadLeft, 0, l.KernelW - 1);
            CheckRange(where, "right padding", l.PadRight, 0, l.KernelW - 1);
            CheckRange(where, "input fraction bits", l.InFrac, -MaxFractionBits, MaxFractionBits);
            CheckRange(where, "second input fraction bits", l.In1Frac, -MaxFractionBits, MaxFractionBits);
            CheckRange(where, "output fraction bits", l.OutFrac, -MaxFractionBits, MaxFractionBits);
            // Add and global pooling shift by these differences: bounded, the shifted values stay far inside 64 bits.
            if (l.Op is QOp.Add or QOp.GlobalAvgPool) CheckRange(where, "input minus output fraction bits", l.InFrac - l.OutFrac, -MaxFormatChange, MaxFormatChange);
            if (l.Op == QOp.Add) CheckRange(where, "second input minus output fraction bits", l.In1Frac - l.OutFrac, -MaxFormatChange, MaxFormatChange);
            if (l.Op == QOp.Conv)
            {
                CheckRange(where, "weight width (bits)", l.WeightBits, 2, 16);
                CheckRange(where, "reduction size (kernel height x width x input channels)", l.ReduceSize, 1, MaxReduceSize);
                CheckRange(where, "weight fraction bits", l.WeightFrac, -MaxFractionBits, MaxFractionBits);
                if (l.MultiplierBits != 0) CheckRange(where, "BN multiplier width (bits)", l.MultiplierBits, 2, 32);
                CheckRange(where, "BN multiplier fraction bits", l.MultiplierFrac, 0, 31);
                CheckRange(where, "accumulator width (bits)", l.AccumulatorBits, 2, 64);
                CheckRange(where, "offset shift", l.OffsetShift, 0, MaxShift);
                CheckRange(where, "output shift", l.OutShift, -MaxShift, MaxShift);
            }
            // The sizes follow from the shape; the stored ones must agree (a check on the record, as its CRC is on the bytes).
            if (U32(r, 72) != l.RowBytes || U64(r, 88) != (ulong)l.WeightsSize || U32(r, 104) != l.BnSize)
                throw new FlashImageException(l.Op == QOp.Conv ? $"{where}: section sizes do not match the layer's shape" : $"{where}: only conv layers have sections");
            return l;
        }

        // Little-endian fields over Span<byte> (Mono's ReadOnlySpan indexer is unusable, see DESIGN.md).
        static int U16(Span<byte> b, int o) => b[o] | b[o + 1] << 8;
        static uint U32(Span<byte> b, int o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
        static ulong U64(Span<byte> b, int o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;
        static void W16(Span<byte> b, int o, int v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }
        static void W32(Span<byte> b, int o, uint v) { for (int i = 0; i < 4; i++) b[o + i] = (byte)(v >> (8 * i)); }
        static void W64(Span<byte> b, int o, ulong v) { W32(b, o, (uint)v); W32(b, o + 4, (uint)(v >> 32)); }
    }
}
